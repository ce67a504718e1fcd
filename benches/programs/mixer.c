/* 64-bit mixer: every 8-byte word, offset by its position, goes through a multiply–xorshift
 * finaliser (two 64-bit multiplies by odd constants, three xor-shifts) and the results are
 * summed. Unlike `fnv1a`'s single chain, the words mix independently: the loop runs at the
 * multiplier's throughput, and the two 64-bit constants must stay in registers. */
#include "bench.h"

static inline u64 mix(u64 x)
{
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x;
}

ENTRY(mixer)
{
	u64 acc = 0;
	for (u64 i = 0; i + 8 <= len; i += 8)
		acc += mix(load64(mem + i) + i);
	return acc;
}
