/* The replay filters' bodies (see replay.h): included after the build defines the map macros,
 * RULE_LOOKUP and FW_STAT for the firewall, VIP_LOOKUP, BACKEND and LB_STAT for the load
 * balancer (each body is there when its macros are). */
#ifndef BPFX_REPLAY_BODIES_H
#define BPFX_REPLAY_BODIES_H

#include "replay.h"

/* Where the transport header starts, or 0 when the frame is not an unfragmented IPv4 TCP or UDP
 * datagram whose headers all lie inside the frame (*ip_out set when it is IPv4). */
static inline __attribute__((always_inline)) u64 parse(void *data, void *data_end,
						       struct iphdr **ip_out)
{
	struct ethhdr *eth = data;
	u64 off = ETH_HLEN;
	if ((void *)(eth + 1) > data_end)
		return 0;
	u16 proto = eth->proto;
	if (proto == HTONS(ETH_P_8021Q)) {
		u16 *inner = (u16 *)((u8 *)data + off + 2);
		if ((void *)(inner + 1) > data_end)
			return 0;
		proto = *inner;
		off += 4;
	}
	if (proto != HTONS(ETH_P_IP))
		return 0;
	struct iphdr *ip = (struct iphdr *)((u8 *)data + off);
	if ((void *)(ip + 1) > data_end)
		return 0;
	*ip_out = ip;
	u64 ihl = (u64)(ip->ver_ihl & 15) * 4;
	if ((ip->ver_ihl >> 4) != 4 || ihl < sizeof(struct iphdr))
		return 0;
	/* Fragments after the first carry no ports; the first, with MF, does. */
	if (ip->frag_off & HTONS(0x1fff))
		return 0;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return 0;
	off += ihl;
	struct ports *p = (struct ports *)((u8 *)data + off);
	if ((void *)(p + 1) > data_end)
		return 0;
	return off;
}

#ifdef RULE_LOOKUP
/* The firewall: parse, look the (source, destination port, protocol) up in the rules, count the
 * verdict and the bytes per CPU. Frames with no rule pass; malformed IPv4 ones are dropped. */
static inline __attribute__((always_inline)) u32 fw_body(void *data, void *data_end)
{
	struct iphdr *ip = 0;
	u64 l4 = parse(data, data_end, &ip);
	u32 verdict = XDP_PASS;
	if (l4) {
		struct ports *p = (struct ports *)((u8 *)data + l4);
		struct rule_key key = {
			.saddr = ip->saddr, .dport = p->dest, .proto = ip->protocol, .pad = 0
		};
		const u32 *action = RULE_LOOKUP(&key);
		if (action)
			verdict = *action;
	} else if (ip) {
		verdict = XDP_DROP;
	}
	u32 slot = verdict & 3;
	struct stat *s = FW_STAT(&slot);
	if (s) {
		s->packets += 1;
		s->bytes += (u64)((u8 *)data_end - (u8 *)data);
	}
	return verdict;
}
#endif

/* One's-complement checksum update for a 32-bit field changing from `from` to `to` (RFC 1624). */
static inline __attribute__((always_inline)) u16 csum_replace4(u16 check, u32 from, u32 to)
{
	u64 sum = (u16)~check;
	sum += (u16)~from + (u16)(~from >> 16);
	sum += (u16)to + (u16)(to >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (u16)~sum;
}

#ifdef VIP_LOOKUP
/* The load balancer: a frame to a service goes to one of its backends, chosen by a hash of the
 * flow (source address and ports), rewritten in place (destination address with the IPv4 and
 * TCP/UDP checksums updated, MAC addresses) and sent back out (XDP_TX); per-CPU counters per
 * backend. Anything else passes. */
static inline __attribute__((always_inline)) u32 lb_body(void *data, void *data_end)
{
	struct iphdr *ip = 0;
	u64 l4 = parse(data, data_end, &ip);
	if (!l4)
		return XDP_PASS;
	struct ports *p = (struct ports *)((u8 *)data + l4);
	struct vip_key key = { .daddr = ip->daddr, .dport = p->dest, .proto = ip->protocol, .pad = 0 };
	const struct vip *v = VIP_LOOKUP(&key);
	if (!v || v->count == 0)
		return XDP_PASS;
	u32 h = ip->saddr ^ ((u32)p->source << 16 | p->dest);
	h ^= h >> 16;
	h *= 0x7feb352d;
	h ^= h >> 15;
	h *= 0x846ca68b;
	h ^= h >> 16;
	u32 index = (v->first + h % v->count) & (MAX_BACKENDS - 1);
	const struct backend *b = BACKEND(&index);
	if (!b)
		return XDP_ABORTED;
	u32 old = ip->daddr;
	ip->check = csum_replace4(ip->check, old, b->addr);
	ip->daddr = b->addr;
	/* The transport checksum covers the pseudo-header's destination address (UDP's 0: none). */
	u16 *check = 0;
	if (ip->protocol == IPPROTO_TCP)
		check = (u16 *)((u8 *)data + l4 + 16);
	else
		check = (u16 *)((u8 *)data + l4 + 6);
	if ((void *)(check + 1) > data_end)
		return XDP_ABORTED;
	if (ip->protocol == IPPROTO_TCP || *check)
		*check = csum_replace4(*check, old, b->addr);
	struct ethhdr *eth = data;
	__builtin_memcpy(eth->src, eth->dst, 6);
	__builtin_memcpy(eth->dst, b->mac, 6);
	struct stat *s = LB_STAT(&index);
	if (s) {
		s->packets += 1;
		s->bytes += (u64)((u8 *)data_end - (u8 *)data);
	}
	return XDP_TX;
}
#endif

#endif
