/* Array sum: the sum of the input as 32-bit words. One load and one add per element, the
 * tightest loop in the suite: any per-access guard shows up in full. */
#include "bench.h"

ENTRY(array_sum)
{
	u64 sum = 0;
	for (u64 i = 0; i + 4 <= len; i += 4)
		sum += load32(mem + i);
	return sum;
}
