/* String compare: the input is 32-byte slots, each holding a NUL-terminated string; every
 * string is compared with the next one byte by byte (strcmp's contract), and the signs are
 * accumulated. Byte loads and two unpredictable-length loops. */
#include "bench.h"

#define SLOT 32

static inline int compare(const u8 *a, const u8 *b)
{
	u64 i = 0;
	while (i < SLOT - 1 && a[i] && a[i] == b[i])
		i++;
	return (int)a[i] - (int)b[i];
}

ENTRY(str_compare)
{
	u64 acc = 0;
	for (u64 off = 0; off + 2 * SLOT <= len; off += SLOT) {
		int c = compare(mem + off, mem + off + SLOT);
		acc = acc * 3 + (c < 0 ? 1 : c > 0 ? 2 : 0);
	}
	return acc;
}

#ifndef __bpf__
/* Strings over a four-letter alphabet with long shared prefixes, so compares run deep: each
 * slot copies a prefix of its predecessor and then diverges. */
INPUT(str_compare)
{
	for (u64 off = 0; off + SLOT <= len; off += SLOT) {
		u8 *s = mem + off;
		u64 n = 8 + s[0] % 23; /* string length, 8..30 */
		u64 keep = off >= SLOT ? s[1] % n : 0;
		for (u64 i = 0; i < n; i++)
			s[i] = i < keep ? s[i - SLOT] : (u8)('a' + s[i + 1] % 4);
		for (u64 i = n; i < SLOT; i++)
			s[i] = 0;
	}
}
#endif
