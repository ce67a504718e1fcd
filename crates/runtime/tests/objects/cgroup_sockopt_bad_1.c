/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgroup_sockopt_bad_1.c -o cgroup_sockopt_bad_1.o */
#define CASE 1
#include "cgroup_sockopt_bad.h"
