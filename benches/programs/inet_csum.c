/* Internet checksum (RFC 1071): big-endian 16-bit words summed with end-around carry, then
 * folded and complemented. Byte loads, shifts and adds. */
#include "bench.h"

ENTRY(inet_csum)
{
	u64 sum = 0;
	u64 i = 0;
	for (; i + 2 <= len; i += 2)
		sum += load16_be(mem + i);
	if (i < len)
		sum += (u64)mem[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}
