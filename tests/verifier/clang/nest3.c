#include "bpf.h"

/* Three nested loops over a 16 x 16 x 16 cube of input bytes, each with a data-dependent
 * exit: the outer loop stops at a row starting with 0xff, the middle one skips to the next
 * row after a plane whose sum exceeds a threshold from the input, the inner one stops at the
 * first byte equal to the plane's marker. */
SEC("prog")
__u64 nest3(const __u8 *mem)
{
	__u64 acc = 0;
	__u32 limit = mem[4096] | ((__u32)mem[4097] << 8);
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 16; i++) {
		const __u8 *plane = mem + i * 256;
		if (plane[0] == 0xff)
			break;
		__u32 sum = 0;
#pragma clang loop unroll(disable)
		for (__u32 j = 0; j < 16; j++) {
			const __u8 *row = plane + j * 16;
			__u8 marker = row[15];
#pragma clang loop unroll(disable)
			for (__u32 k = 0; k < 15; k++) {
				if (row[k] == marker)
					break;
				sum += row[k] * (k + 1);
				acc = acc * 33 + row[k];
			}
			if (sum > limit)
				break;
		}
		acc ^= (__u64)sum << (i & 31);
	}
	return acc;
}
