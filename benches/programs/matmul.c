/* Matrix multiply: C = A x B for square matrices of 32-bit words (wrapping arithmetic), the
 * textbook i-j-k triple loop. A and B fill the start of the input, C is written after them:
 * n x n with n the largest size up to 16 for which the three fit, so the loop bounds (and the
 * index arithmetic i*n + k, k*n + j) come from the input length. The result folds C. */
#include "bench.h"

ENTRY(matmul)
{
	u64 n = 16;
	while (n > 0 && 12 * n * n > len)
		n--;
	u32 *a = (u32 *)mem;
	u32 *b = a + n * n;
	u32 *c = b + n * n;
	for (u64 i = 0; i < n; i++)
		for (u64 j = 0; j < n; j++) {
			u32 sum = 0;
			for (u64 k = 0; k < n; k++)
				sum += a[i * n + k] * b[k * n + j];
			c[i * n + j] = sum;
		}
	u64 acc = 0;
	for (u64 i = 0; i < n * n; i++)
		acc = (acc ^ c[i]) * 0x100000001b3ull;
	return acc;
}
