/* Packet parsing: the input is a sequence of records, each a 16-bit big-endian length followed
 * by an Ethernet frame (optionally 802.1Q-tagged) carrying IPv4 with options, then TCP or UDP.
 * Every header field read is bounds-checked against the record, as a real parser must; the
 * result counts protocols and sums ports and lengths. */
#include "bench.h"

ENTRY(packet)
{
	u64 tcp = 0, udp = 0, other = 0, bad = 0, ports = 0;
	u64 off = 0;
	while (off + 2 <= len) {
		u64 rec = load16_be(mem + off);
		off += 2;
		if (rec > len - off)
			break;
		const u8 *p = mem + off;
		off += rec;
		u64 l3 = 14;
		if (rec < 14) { bad++; continue; }
		u64 eth = load16_be(p + 12);
		if (eth == 0x8100) {
			if (rec < 18) { bad++; continue; }
			eth = load16_be(p + 16);
			l3 = 18;
		}
		if (eth != 0x0800) { other++; continue; }
		if (rec < l3 + 20) { bad++; continue; }
		const u8 *ip = p + l3;
		if ((ip[0] >> 4) != 4) { bad++; continue; }
		u64 ihl = (u64)(ip[0] & 15) * 4;
		u64 total = load16_be(ip + 2);
		if (ihl < 20 || total < ihl || l3 + total > rec) { bad++; continue; }
		u64 l4 = l3 + ihl;
		u8 proto = ip[9];
		if (proto == 6 && l4 + 20 <= rec) {
			tcp++;
			ports += load16_be(p + l4) + load16_be(p + l4 + 2);
			ports += (p[l4 + 13] & 0x3f); /* flags */
		} else if (proto == 17 && l4 + 8 <= rec) {
			udp++;
			ports += load16_be(p + l4) + load16_be(p + l4 + 2) + load16_be(p + l4 + 4);
		} else {
			other++;
		}
	}
	return (tcp | udp << 16 | other << 32 | bad << 48) ^ ports;
}

#ifndef __bpf__
INPUT(packet)
{
	shape_packets(mem, len);
}
#endif
