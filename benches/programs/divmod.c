/* Division-heavy arithmetic: the greatest common divisor of each pair of 32-bit words by
 * Euclid's algorithm (a modulo per step), plus the decimal digit sum of each word (a division
 * and a modulo by 10 per digit). */
#include "bench.h"

static inline u64 gcd(u64 a, u64 b)
{
	while (b) {
		u64 t = a % b;
		a = b;
		b = t;
	}
	return a;
}

ENTRY(divmod)
{
	u64 acc = 0;
	for (u64 i = 0; i + 8 <= len; i += 8) {
		u64 a = load32(mem + i) | 1;
		u64 b = load32(mem + i + 4) | 1;
		acc += gcd(a, b);
		for (u64 x = a; x; x /= 10)
			acc += x % 10;
	}
	return acc;
}
