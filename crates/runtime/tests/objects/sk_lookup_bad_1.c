/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_lookup_bad_1.c -o sk_lookup_bad_1.o */
#define CASE 1
#include "sk_lookup_bad.h"
