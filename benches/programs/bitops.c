/* Bit manipulation on 64-bit words: population count (SWAR), bit reversal by swapping ever
 * smaller groups, and the index of the highest set bit by binary search. Constants need
 * lddw, shifts and masks dominate. */
#include "bench.h"

static inline u64 popcount(u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (x * 0x0101010101010101ull) >> 56;
}

static inline u64 reverse(u64 x)
{
	x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
	x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
	x = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((x & 0x0f0f0f0f0f0f0f0full) << 4);
	x = ((x >> 8) & 0x00ff00ff00ff00ffull) | ((x & 0x00ff00ff00ff00ffull) << 8);
	x = ((x >> 16) & 0x0000ffff0000ffffull) | ((x & 0x0000ffff0000ffffull) << 16);
	return (x >> 32) | (x << 32);
}

static inline u64 highest_bit(u64 x)
{
	u64 n = 0;
	if (x >> 32) { n += 32; x >>= 32; }
	if (x >> 16) { n += 16; x >>= 16; }
	if (x >> 8) { n += 8; x >>= 8; }
	if (x >> 4) { n += 4; x >>= 4; }
	if (x >> 2) { n += 2; x >>= 2; }
	if (x >> 1) { n += 1; }
	return n;
}

ENTRY(bitops)
{
	u64 acc = 0;
	for (u64 i = 0; i + 8 <= len; i += 8) {
		u64 w = load64(mem + i);
		acc += popcount(w);
		acc ^= reverse(w);
		acc += highest_bit(w | 1);
		acc = (acc << 7) | (acc >> 57);
	}
	return acc;
}
