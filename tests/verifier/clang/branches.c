#include "bpf.h"

/* 40 independent tests of input bytes in sequence, each adding a different constant: 2^40
 * paths, which an analysis that keeps paths apart cannot enumerate. */
SEC("prog")
__u64 branches(const __u8 *mem)
{
	__u64 acc = mem[63];
	if (mem[0] > 11)
		acc = acc * 3 + 1;
	if (mem[1] < 48)
		acc = acc * 5 + 1010;
	if (mem[2] == 85)
		acc = acc * 7 + 2019;
	if (mem[3] & 0x7a)
		acc = acc * 9 + 3028;
	if (mem[4] > 159)
		acc = acc * 11 + 4037;
	if (mem[5] < 196)
		acc = acc * 13 + 5046;
	if (mem[6] == 233)
		acc = acc * 15 + 6055;
	if (mem[7] & 0x0e)
		acc = acc * 17 + 7064;
	if (mem[8] > 51)
		acc = acc * 19 + 8073;
	if (mem[9] < 88)
		acc = acc * 21 + 9082;
	if (mem[10] == 125)
		acc = acc * 23 + 10091;
	if (mem[11] & 0xa2)
		acc = acc * 25 + 11100;
	if (mem[12] > 199)
		acc = acc * 27 + 12109;
	if (mem[13] < 236)
		acc = acc * 29 + 13118;
	if (mem[14] == 17)
		acc = acc * 31 + 14127;
	if (mem[15] & 0x36)
		acc = acc * 33 + 15136;
	if (mem[16] > 91)
		acc = acc * 35 + 16145;
	if (mem[17] < 128)
		acc = acc * 37 + 17154;
	if (mem[18] == 165)
		acc = acc * 39 + 18163;
	if (mem[19] & 0xca)
		acc = acc * 41 + 19172;
	if (mem[20] > 239)
		acc = acc * 43 + 20181;
	if (mem[21] < 20)
		acc = acc * 45 + 21190;
	if (mem[22] == 57)
		acc = acc * 47 + 22199;
	if (mem[23] & 0x5e)
		acc = acc * 49 + 23208;
	if (mem[24] > 131)
		acc = acc * 51 + 24217;
	if (mem[25] < 168)
		acc = acc * 53 + 25226;
	if (mem[26] == 205)
		acc = acc * 55 + 26235;
	if (mem[27] & 0xf2)
		acc = acc * 57 + 27244;
	if (mem[28] > 23)
		acc = acc * 59 + 28253;
	if (mem[29] < 60)
		acc = acc * 61 + 29262;
	if (mem[30] == 97)
		acc = acc * 63 + 30271;
	if (mem[31] & 0x86)
		acc = acc * 65 + 31280;
	if (mem[32] > 171)
		acc = acc * 67 + 32289;
	if (mem[33] < 208)
		acc = acc * 69 + 33298;
	if (mem[34] == 245)
		acc = acc * 71 + 34307;
	if (mem[35] & 0x1a)
		acc = acc * 73 + 35316;
	if (mem[36] > 63)
		acc = acc * 75 + 36325;
	if (mem[37] < 100)
		acc = acc * 77 + 37334;
	if (mem[38] == 137)
		acc = acc * 79 + 38343;
	if (mem[39] & 0xae)
		acc = acc * 81 + 39352;
	return acc;
}
