#include "bpf.h"

/* A loop over a fixed-size buffer: the 64-byte input memory. */
SEC("prog")
int loop_sum(const __u8 *mem)
{
	__u32 sum = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 64; i++)
		sum += mem[i];
	return sum;
}
