/* Memory copy: the first half of the input is copied into the second half, 8 bytes at a time,
 * then every 64th word of the copy is folded into the result (so the copy is observable).
 * Loads and stores in equal number. */
#include "bench.h"

ENTRY(mem_copy)
{
	u64 half = (len / 2) & ~7ull;
	volatile u64 *dst = (u64 *)(mem + half);
	const u64 *src = (const u64 *)mem;
	/* volatile keeps the loop a loop: otherwise the compiler turns it into a call to memcpy,
	 * which the BPF target cannot make. */
	for (u64 i = 0; i < half / 8; i++)
		dst[i] = src[i];
	u64 acc = 0;
	for (u64 i = 0; i < half / 8; i += 8)
		acc = acc * 31 + dst[i];
	return acc;
}
