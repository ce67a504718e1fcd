/* A program over an embedder-defined context struct whose 64-bit data/data_end fields bound a
 * packet, for bpfx_program_opts' context fields (tests/c/object.c): returns x * 1000 plus
 * the packet's first two bytes, or 1 when the packet is shorter than two bytes.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c struct_ctx.c -o struct_ctx.o
 */
#include "bpf_helpers.h"

struct embedder_ctx {
	__u32 x;
	__u32 y;
	__u64 data;
	__u64 data_end;
};

SEC("mem")
int read_ctx(struct embedder_ctx *c)
{
	__u8 *d = (void *)(long)c->data;
	__u8 *end = (void *)(long)c->data_end;

	if (d + 2 > end)
		return 1;
	return c->x * 1000 + d[0] + d[1];
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
