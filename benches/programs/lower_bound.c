/* Branchless lower bound: the first half of the input is a sorted array of 32-bit keys, the
 * second half the 32-bit values to look up. Unlike `binary_search` (lo/hi bounds and a branch
 * per step), each step halves a window [base, base + size) and moves its base by a select, so
 * the loop runs a fixed log2(n) steps and every load is `keys[base + half]`: an index that only
 * the loop's own invariant (base + size <= n) keeps in bounds, which a checker without
 * relations between scalars must guard. */
#include "bench.h"

ENTRY(lower_bound)
{
	u64 n = len / 8; /* keys in the first half */
	const u32 *keys = (const u32 *)mem;
	const u32 *queries = (const u32 *)(mem + n * 4);
	u64 acc = 0;
	if (n == 0)
		return 0;
	for (u64 q = 0; q < n; q++) {
		u32 want = queries[q];
		u64 base = 0, size = n;
		while (size > 1) {
			u64 half = size / 2;
			base = keys[base + half] < want ? base + half : base;
			size -= half;
		}
		base += keys[base] < want;
		acc = acc * 33 + base;
	}
	return acc;
}

#ifndef __bpf__
/* Keys increasing by 0..15 (so runs of equal keys, where the lower bound differs from any
 * match); queries drawn around the key range, a third of them equal to a key. */
INPUT(lower_bound)
{
	u64 n = len / 8;
	u32 *keys = (u32 *)mem;
	u32 *queries = (u32 *)(mem + n * 4);
	u32 k = 0;
	if (n == 0)
		return;
	for (u64 i = 0; i < n; i++) {
		k += queries[i] & 15;
		keys[i] = k;
	}
	for (u64 i = 0; i < n; i++) {
		u32 r = queries[i];
		queries[i] = r % 3 == 0 ? keys[(r >> 2) % n] : (r >> 2) % (k + 32);
	}
}
#endif
