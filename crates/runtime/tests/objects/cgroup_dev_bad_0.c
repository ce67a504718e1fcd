/* clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgroup_dev_bad_0.c -o cgroup_dev_bad_0.o */
#define CASE 0
#include "cgroup_dev_bad.h"
