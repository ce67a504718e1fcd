/* XDP filters over variable-length headers, in the shapes clang -O2 gives them: up to two VLAN
 * tags skipped in a loop, IPv4 options skipped by ihl * 4, IPv6 extension headers walked in a
 * bounded loop (unrolled and not), then the L4 ports read. Each drops UDP or TCP to port 53 and
 * passes the rest; a frame too short for what it claims is dropped. */
#include "hdr.h"

#define BLOCKED_PORT 53

/* Skips up to two VLAN tags; returns the pointer past them and the inner ethertype in *proto,
 * or 0 when the frame is too short. */
static __attribute__((always_inline)) void *skip_vlans(void *data, void *data_end, __u16 *proto)
{
	struct eth *eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	void *cur = eth + 1;
	__u16 p = eth->proto;
	for (int i = 0; i < 2; i++) {
		if (p != bswap16(ETH_P_8021Q) && p != bswap16(ETH_P_8021AD))
			break;
		struct vlan *v = cur;
		if ((void *)(v + 1) > data_end)
			return 0;
		p = v->proto;
		cur = v + 1;
	}
	*proto = p;
	return cur;
}

static __attribute__((always_inline)) int verdict(struct ports *l4, void *data_end)
{
	if ((void *)(l4 + 1) > data_end)
		return XDP_DROP;
	return l4->dport == bswap16(BLOCKED_PORT) ? XDP_DROP : XDP_PASS;
}

/* VLAN tags, then IPv4 with its options skipped by ihl * 4. */
SEC("xdp")
int vlan_ipv4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 proto;
	void *cur = skip_vlans(data, data_end, &proto);
	if (!cur)
		return XDP_DROP;
	if (proto != bswap16(ETH_P_IP))
		return XDP_PASS;
	struct ipv4 *ip = cur;
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	__u32 off = (ip->vhl & 0xf) * 4;
	if (off < sizeof(*ip))
		return XDP_DROP;
	if (ip->proto != 17 && ip->proto != 6)
		return XDP_PASS;
	if (cur + off + sizeof(struct ports) > data_end)
		return XDP_DROP;
	return verdict(cur + off, data_end);
}

static __attribute__((always_inline)) int is_ext(__u8 next)
{
	return next == 0 || next == 43 || next == 60;
}

/* IPv6 behind up to two VLAN tags, then up to four extension headers walked in a loop clang
 * keeps as a loop. */
SEC("xdp")
int vlan_ipv6_loop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 proto;
	void *cur = skip_vlans(data, data_end, &proto);
	if (!cur)
		return XDP_DROP;
	if (proto != bswap16(ETH_P_IPV6))
		return XDP_PASS;
	struct ipv6 *ip6 = cur;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__u8 next = ip6->next;
	cur = ip6 + 1;
#pragma nounroll
	for (int i = 0; i < 4; i++) {
		if (!is_ext(next))
			break;
		struct ext *e = cur;
		if ((void *)(e + 1) > data_end)
			return XDP_DROP;
		next = e->next;
		cur += (e->len + 1) * 8;
	}
	if (next != 17 && next != 6)
		return XDP_PASS;
	return verdict(cur, data_end);
}

/* The same walk, unrolled by clang. */
SEC("xdp")
int vlan_ipv6_unrolled(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 proto;
	void *cur = skip_vlans(data, data_end, &proto);
	if (!cur)
		return XDP_DROP;
	if (proto != bswap16(ETH_P_IPV6))
		return XDP_PASS;
	struct ipv6 *ip6 = cur;
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__u8 next = ip6->next;
	cur = ip6 + 1;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (!is_ext(next))
			break;
		struct ext *e = cur;
		if ((void *)(e + 1) > data_end)
			return XDP_DROP;
		next = e->next;
		cur += (e->len + 1) * 8;
	}
	if (next != 17 && next != 6)
		return XDP_PASS;
	return verdict(cur, data_end);
}
