/* The unsafe twin of sock_join.c: `src` is also read on the paths where it holds 0, which the
 * kernel refuses (a load through a scalar) and so must bpfx (tests/path_join.rs).
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sock_join_bad.c -o sock_join_bad.o */
#define UNSAFE
#include "sock_join.c"
