/* The unsafe twins of copies.c: a copy checked with a smaller bound, then the original read
 * further (crates/runtime/tests/strict_copies.rs rejects them in Strict mode). Built by
 * build.sh. */
#include "hdr.h"

static __attribute__((always_inline)) int l4_offset(void *data, void *end)
{
	struct eth *eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	if (eth->proto != bswap16(ETH_P_IP))
		return 0;
	struct ipv4 *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return -1;
	int ihl = (ip->vhl & 0xf) * 4;
	if (ihl < 20)
		return -1;
	return sizeof(*eth) + ihl;
}

/* UDP's checksum checked at l4 + 6, then the two bytes after it read through `l4 + 8`. */
SEC("xdp") int csum_copy_short(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	int off = l4_offset(data, end);
	if (off <= 0)
		return off < 0 ? XDP_DROP : XDP_PASS;
	__u8 proto = ((struct ipv4 *)(data + 14))->proto;
	__u16 *check;
	if (proto == 6)
		check = (__u16 *)((__u8 *)data + off + 16);
	else
		check = (__u16 *)((__u8 *)data + off + 6);
	if ((void *)(check + 1) > end)
		return XDP_DROP;
	__u16 v = proto == 6 ? *check : *(volatile __u16 *)((__u8 *)data + off + 8);
	return v & 1 ? XDP_TX : XDP_PASS;
}

/* A copy checked 8 bytes past l4, the original read at l4[8]. */
SEC("xdp") int copy_short(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	int off = l4_offset(data, end);
	if (off <= 0)
		return off < 0 ? XDP_DROP : XDP_PASS;
	__u8 *l4 = (__u8 *)data + off;
	__u8 *q = l4;
	q += 8;
	if ((void *)q > end)
		return XDP_DROP;
	return *(volatile __u8 *)(l4 + 8) & 1 ? XDP_TX : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
