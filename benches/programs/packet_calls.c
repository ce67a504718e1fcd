/* Packet parsing split into local calls, as a parser made of per-layer functions is: the same
 * records as `packet` (a 16-bit big-endian length, then Ethernet, optionally 802.1Q, IPv4 with
 * options, TCP or UDP), with the link, network and transport layers each a non-inlined
 * function taking a pointer into the input and the bytes left. Every header read is checked
 * against the bytes its function was given. */
#include "bench.h"

/* The offset of the IPv4 header, or 0 when the frame is not IPv4 (1 when it is too short). */
static NOINLINE u64 link_layer(const u8 *p, u64 rec)
{
	if (rec < 14)
		return 1;
	u64 eth = load16_be(p + 12);
	u64 l3 = 14;
	if (eth == 0x8100) {
		if (rec < 18)
			return 1;
		eth = load16_be(p + 16);
		l3 = 18;
	}
	return eth == 0x0800 ? l3 : 0;
}

/* The IPv4 header's length in bytes and the protocol (ihl | proto << 8), or 0 when malformed. */
static NOINLINE u64 network_layer(const u8 *ip, u64 left)
{
	if (left < 20 || (ip[0] >> 4) != 4)
		return 0;
	u64 ihl = (u64)(ip[0] & 15) * 4;
	u64 total = load16_be(ip + 2);
	if (ihl < 20 || total < ihl || total > left)
		return 0;
	return ihl | (u64)ip[9] << 8;
}

/* The sum of the ports (and TCP flags or the UDP length), or ~0 when the header is cut. */
static NOINLINE u64 transport_layer(const u8 *l4, u64 left, u64 proto)
{
	if (proto == 6) {
		if (left < 20)
			return ~0ull;
		return load16_be(l4) + load16_be(l4 + 2) + (l4[13] & 0x3f);
	}
	if (left < 8)
		return ~0ull;
	return load16_be(l4) + load16_be(l4 + 2) + load16_be(l4 + 4);
}

ENTRY(packet_calls)
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
		u64 l3 = link_layer(p, rec);
		if (l3 <= 1) {
			if (l3) bad++; else other++;
			continue;
		}
		u64 ip = network_layer(p + l3, rec - l3);
		if (ip == 0) { bad++; continue; }
		u64 ihl = ip & 0xff, proto = ip >> 8;
		if (proto != 6 && proto != 17) { other++; continue; }
		u64 t = transport_layer(p + l3 + ihl, rec - l3 - ihl, proto);
		if (t == ~0ull) { other++; continue; }
		if (proto == 6) tcp++; else udp++;
		ports += t;
	}
	return (tcp | udp << 16 | other << 32 | bad << 48) ^ ports;
}

#ifndef __bpf__
INPUT(packet_calls)
{
	shape_packets(mem, len);
}
#endif
