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
static void put16(u8 *p, u64 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }

/* Records of 60..124 bytes: mostly IPv4 TCP and UDP, some VLAN-tagged, some with IP options,
 * a few non-IP or truncated ones, so every branch of the parser runs. */
INPUT(packet)
{
	u64 off = 0;
	while (off + 2 + 124 <= len) {
		u8 *p = mem + off + 2;
		u8 r = p[0], s = p[1];
		u64 rec = 60 + (r & 63);
		u64 l3 = (s & 7) == 0 ? 18 : 14;
		if (l3 == 18) { put16(p + 12, 0x8100); put16(p + 16, 0x0800); }
		else put16(p + 12, (s & 31) == 9 ? 0x86dd : 0x0800);
		u64 ihl = (s & 8) ? 6 : 5;
		u8 *ip = p + l3;
		ip[0] = (u8)(0x40 | ihl);
		u64 total = rec - l3 - ((r >> 6) & 1) * 4;
		put16(ip + 2, (s & 63) == 17 ? rec : total);
		ip[9] = (s & 16) ? 6 : (s & 32) ? 17 : (u8)(1 + (s & 1));
		put16(mem + off, rec);
		off += 2 + rec;
	}
	/* A zero length ends the parse cleanly. */
	if (off + 2 <= len)
		put16(mem + off, 0);
	for (off += 2; off < len; off++)
		mem[off] = 0;
}
#endif
