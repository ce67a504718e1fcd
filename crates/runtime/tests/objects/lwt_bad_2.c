/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c lwt_bad_2.c -o lwt_bad_2.o */
#define CASE 2
#include "lwt_bad.h"
