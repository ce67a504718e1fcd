/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit without a table: a
 * data-dependent shift/xor chain of eight steps per byte. */
#include "bench.h"

ENTRY(crc32)
{
	u32 crc = 0xffffffff;
	for (u64 i = 0; i < len; i++) {
		crc ^= mem[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320 & (0u - (crc & 1)));
	}
	return ~crc;
}
