/* The unsafe twin of xdp_mapsel.c: the lookup's second word is incremented, past the end of
 * `small_stats`' 8-byte values on the path that chose it, which the kernel refuses and so must
 * bpfx's Strict mode (tests/path_join.rs).
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c xdp_mapsel_bad.c -o xdp_mapsel_bad.o */
#define WORD 1
#include "xdp_mapsel.c"
