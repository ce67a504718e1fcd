/* Unaligned word copy: the first half of the input, from offset 3, is copied to the second
 * half at offset 5 past its start, 8 bytes at a time at those unaligned addresses, then the
 * remaining 0..7 bytes one by one (memcpy's shape for arbitrary pointers); every 64th byte
 * position of the copy is then folded into the result as a word (so the copy is observable). */
#include "bench.h"

ENTRY(unaligned_copy)
{
	if (len < 16)
		return len;
	u64 half = len / 2;
	u64 n = half - 5; /* bytes copied: source [3, half - 2), destination [half + 5, 2 * half) */
	const u8 *src = mem + 3;
	u8 *dst = mem + half + 5;
	u64 i = 0;
	for (; i + 8 <= n; i += 8)
		store64u(dst + i, load64u(src + i));
	for (; i < n; i++)
		dst[i] = src[i];
	u64 acc = 0;
	for (u64 j = 0; j + 8 <= n; j += 64)
		acc = acc * 31 + load64u(dst + j);
	return acc ^ dst[n - 1];
}
