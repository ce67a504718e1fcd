/* The unsafe twins of headers.c, each one bound wrong: Strict mode must reject every one
 * (Checked mode accepts them and keeps the run-time guards). */
#include "hdr.h"

/* The ports are read one byte past what the check after the IPv4 options proved. */
SEC("xdp")
int ihl_off_by_one(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->proto != bswap16(ETH_P_IP))
		return XDP_PASS;
	struct ipv4 *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;
	__u32 off = (ip->vhl & 0xf) * 4;
	if ((void *)ip + off + 3 > data_end)
		return XDP_DROP;
	struct ports *l4 = (void *)ip + off;
	return l4->dport == bswap16(53) ? XDP_DROP : XDP_PASS;
}

/* The second VLAN tag is read without its own data_end check. */
SEC("xdp")
int vlan_missing_check(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	void *cur = eth + 1;
	__u16 p = eth->proto;
	for (int i = 0; i < 2; i++) {
		if (p != bswap16(ETH_P_8021Q))
			break;
		struct vlan *v = cur;
		if (i == 0 && (void *)(v + 1) > data_end)
			return XDP_DROP;
		p = v->proto;
		cur = v + 1;
	}
	return p == bswap16(ETH_P_IP) ? XDP_PASS : XDP_DROP;
}

/* The extension header walk reads the header's length byte behind a one-byte check. */
SEC("xdp")
int ext_off_by_one(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->proto != bswap16(ETH_P_IPV6))
		return XDP_PASS;
	struct ipv6 *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_DROP;
	__u8 next = ip6->next;
	void *cur = ip6 + 1;
#pragma nounroll
	for (int i = 0; i < 4; i++) {
		if (next != 0 && next != 43 && next != 60)
			break;
		struct ext *e = cur;
		if ((void *)e + 1 > data_end)
			return XDP_DROP;
		next = e->next;
		cur += (e->len + 1) * 8;
	}
	return next == 17 ? XDP_DROP : XDP_PASS;
}
