/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgroup_sockopt_bad_2.c -o cgroup_sockopt_bad_2.o */
#define CASE 2
#include "cgroup_sockopt_bad.h"
