#include "bpf.h"

/* A loop bounded by a value read from the input and clamped: at most 15 iterations over
 * 4-byte words of the 64-byte input. */
SEC("prog")
int bounded_loop(const __u32 *mem)
{
	__u32 n = mem[0] & 15;
	__u32 acc = 0;
#pragma clang loop unroll(disable)
	for (__u32 i = 1; i <= n; i++)
		acc ^= mem[i] * i;
	return acc;
}
