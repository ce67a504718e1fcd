/* Binary search: the first half of the input is a sorted array of 32-bit keys, the second half
 * holds the 32-bit values to look up; the result sums the positions found (or inserted at).
 * Data-dependent branches and indexed loads. */
#include "bench.h"

ENTRY(binary_search)
{
	u64 n = len / 8; /* keys in the first half */
	const u32 *keys = (const u32 *)mem;
	const u32 *queries = (const u32 *)(mem + n * 4);
	u64 acc = 0;
	for (u64 q = 0; q < n; q++) {
		u32 want = queries[q];
		u64 lo = 0, hi = n;
		while (lo < hi) {
			u64 mid = (lo + hi) / 2;
			if (keys[mid] < want)
				lo = mid + 1;
			else
				hi = mid;
		}
		acc += lo + (lo < n && keys[lo] == want ? 1000000 : 0);
	}
	return acc;
}

#ifndef __bpf__
/* Keys strictly increasing by 1..64; queries hit a key about half the time. */
INPUT(binary_search)
{
	u64 n = len / 8;
	u32 *keys = (u32 *)mem;
	u32 *queries = (u32 *)(mem + n * 4);
	u32 k = 0;
	if (n == 0)
		return;
	for (u64 i = 0; i < n; i++) {
		k += 1 + (queries[i] & 63);
		keys[i] = k;
	}
	for (u64 i = 0; i < n; i++) {
		u32 r = queries[i];
		queries[i] = (r & 1) ? keys[(r >> 1) % n] : (r >> 1) % (k + 64);
	}
}
#endif
