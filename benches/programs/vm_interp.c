/* A bytecode interpreter: the input is a program of 2-byte instructions (opcode in the low
 * nibble, a 4-bit field in the high nibble, an 8-bit operand in the second byte) for a machine
 * of four registers; a 16-way switch dispatches on the opcode, three of which jump (relative,
 * conditional, absolute), so the next instruction comes from the program counter, not from a
 * scan. The counter wraps at the largest power of two of instructions the input holds; the
 * run executes len steps. Returns the registers folded. */
#include "bench.h"

ENTRY(vm_interp)
{
	u64 n = len / 2;
	if (n == 0)
		return 0;
	u64 mask = 1;
	while (mask * 2 <= n)
		mask *= 2;
	mask -= 1;
	u64 a = 1, b = 2, c = 3, d = 4;
	u64 pc = 0;
	for (u64 step = 0; step < len; step++) {
		u64 op = mem[2 * pc];
		u64 arg = mem[2 * pc + 1];
		u64 f = op >> 4;
		pc = (pc + 1) & mask;
		switch (op & 15) {
		case 0: a += arg; break;
		case 1: b -= arg << f; break;
		case 2: c ^= a; break;
		case 3: d = d * 3 + arg; break;
		case 4: a = (a << 1) | (b >> 63); break;
		case 5: b += c >> f; break;
		case 6: c = c * 5 + d; break;
		case 7: d ^= a + arg; break;
		case 8: a -= d; break;
		case 9: b = (b >> 1) | (b << 63); break;
		case 10: c += arg * f; break;
		case 11: d -= b; break;
		case 12: a ^= c & 0xffff; break;
		case 13: pc = (pc + arg) & mask; break;              /* jump forward */
		case 14: if (a & (1ull << f)) pc = (pc - arg) & mask; break; /* branch back */
		default: pc = (arg * 7 + f) & mask; break;           /* jump absolute */
		}
	}
	return a ^ (b << 1) ^ (c << 2) ^ (d << 3);
}
