#include "bpf.h"

/* Compares 256 pairs of 64-byte slots: the input holds 512 slots, pair i is slots 2i and
 * 2i+1. A byte loop finds the length of the common prefix of the first 16 bytes (stopping at
 * a zero byte or a difference); an 8-byte-word loop then orders the remaining 48 bytes as
 * big-endian words (bswap), stopping at the first difference. Returns a digest of the
 * orderings. */
#define SLOT 64
#define PAIRS 256

SEC("prog")
__u64 strcmp_pairs(const __u8 *mem)
{
	__u64 digest = 0;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < PAIRS; i++) {
		const __u8 *a = mem + (__u64)i * 2 * SLOT;
		const __u8 *b = a + SLOT;
		__u32 k = 0;
		int order = 0;
#pragma clang loop unroll(disable)
		for (; k < 16; k++) {
			if (a[k] != b[k]) {
				order = a[k] < b[k] ? -1 : 1;
				break;
			}
			if (a[k] == 0)
				break;
		}
		if (order == 0 && k == 16) {
#pragma clang loop unroll(disable)
			for (__u32 w = 2; w < SLOT / 8; w++) {
				__u64 x = __builtin_bswap64(((const __u64 *)a)[w]);
				__u64 y = __builtin_bswap64(((const __u64 *)b)[w]);
				if (x != y) {
					order = x < y ? -1 : 1;
					break;
				}
			}
		}
		digest = digest * 3 + (__u64)(order + 1) + ((__u64)k << 8);
	}
	return digest;
}
