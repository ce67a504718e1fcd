/* Local calls: per 8-byte word, a call chain two deep into non-inlined functions, as a
 * program split into subprograms does. Measures call/return and the frame switch. */
#include "bench.h"

static NOINLINE u64 rotmix(u64 a, u64 b)
{
	u64 x = (a ^ b) * 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

static NOINLINE u64 step(u64 h, u64 w, u64 i)
{
	return rotmix(h + i, w) + (w >> 7);
}

ENTRY(calls)
{
	u64 h = len;
	for (u64 i = 0; i + 8 <= len; i += 8)
		h = step(h, load64(mem + i), i);
	return h;
}
