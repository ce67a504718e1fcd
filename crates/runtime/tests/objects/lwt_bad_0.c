/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c lwt_bad_0.c -o lwt_bad_0.o */
#define CASE 0
#include "lwt_bad.h"
