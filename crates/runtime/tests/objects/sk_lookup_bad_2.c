/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_lookup_bad_2.c -o sk_lookup_bad_2.o */
#define CASE 2
#include "sk_lookup_bad.h"
