/* A dense switch: a tiny stack machine whose sixteen opcodes are the low nibble of each input
 * byte, and whose operand is the high nibble. The switch is the hot path, as in any bytecode
 * interpreter. */
#include "bench.h"

ENTRY(dense_switch)
{
	u64 a = 1, b = 2, c = 3;
	for (u64 i = 0; i < len; i++) {
		u64 v = mem[i] >> 4;
		switch (mem[i] & 15) {
		case 0: a += v; break;
		case 1: b -= v; break;
		case 2: c ^= a; break;
		case 3: a = a * 3 + v; break;
		case 4: b = (b << 1) | (a >> 63); break;
		case 5: c += b >> 3; break;
		case 6: a ^= c; break;
		case 7: b += a & 0xff; break;
		case 8: c = c * 5 + 1; break;
		case 9: a -= b; break;
		case 10: b ^= v << 8; break;
		case 11: c = (c >> 1) | (c << 63); break;
		case 12: a += c; break;
		case 13: b = b * 7; break;
		case 14: c -= a; break;
		default: a = a + b + c; break;
		}
	}
	return a ^ (b << 1) ^ (c << 2);
}
