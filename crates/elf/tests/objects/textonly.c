/* An object of plain functions, all in .text (no program sections), as bpfx and uBPF run
 * them: its global functions are programs; its static ones only subprograms. */
#include "bpf_helpers.h"

static __noinline __u64 half(__u64 x)
{
	return x / 2;
}

__noinline __u64 add_half(__u64 *mem)
{
	return mem[0] + half(mem[1]);
}

__u64 sum_halves(__u64 *mem)
{
	return add_half(mem) + half(mem[2]);
}
