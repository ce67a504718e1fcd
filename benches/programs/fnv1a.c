/* FNV-1a 64-bit hash over every byte, then a murmur3 finaliser: a serial multiply chain, so
 * the loop runs at the latency of a 64-bit multiply. */
#include "bench.h"

ENTRY(fnv1a)
{
	u64 h = 0xcbf29ce484222325ull;
	for (u64 i = 0; i < len; i++) {
		h ^= mem[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}
