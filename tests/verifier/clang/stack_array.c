#include "bpf.h"

/* A stack array filled in a loop, then read at an index from the input, masked and
 * bounds-checked. */
SEC("prog")
int stack_array(const __u8 *mem)
{
	volatile __u32 table[16];
#pragma clang loop unroll(disable)
	for (int i = 0; i < 16; i++)
		table[i] = i * i + mem[i];
	__u32 a = mem[16] & 15;
	__u32 b = mem[17];
	__u32 r = table[a];
	if (b < 16)
		r += table[b];
	return r;
}
