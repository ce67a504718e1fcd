#include "bpf.h"

/* Counts the primes in [2, limit] by trial division, limit = mem[0] & 0xffff (up to 65,535),
 * and folds every prime found into a 64-bit digest with a division and a remainder. The inner
 * loop runs to 46,341 (the square root of 2^31) with two data-dependent exits. */
SEC("prog")
__u64 primes(const __u32 *mem)
{
	__u32 limit = mem[0] & 0xffff;
	__u32 count = 0;
	__u64 digest = mem[1] | 1;
	for (__u32 n = 2; n <= limit; n++) {
		__u32 prime = n == 2 || (n & 1);
		if (n > 2 && prime) {
			for (__u32 d = 3; d < 46341; d += 2) {
				if (d * d > n)
					break;
				if (n % d == 0) {
					prime = 0;
					break;
				}
			}
		}
		if (prime) {
			count++;
			digest = digest * 1000003 + n;
			digest = digest % 0xfffffffbULL + digest / 65537;
		}
	}
	return ((__u64)count << 32) ^ digest;
}
