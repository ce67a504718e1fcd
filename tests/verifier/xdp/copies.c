/* Packet ranges carried to copies (crates/runtime/tests/strict_copies.rs): a `data_end` check
 * on one pointer proves the bytes it covers for every pointer derived from the same packet
 * pointer, whichever register or stack slot holds it. Built by build.sh. */
#include "hdr.h"

/* The offset of the transport header after IPv4 options (`ihl * 4`), 0 for a frame to pass,
 * -1 for one to drop. */
static __attribute__((always_inline)) int l4_offset(void *data, void *end, struct ipv4 **ipp)
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
	*ipp = ip;
	return sizeof(*eth) + ihl;
}

/* The load balancer's checksum pointer: TCP's at l4 + 16, UDP's at l4 + 6, one check of the
 * chosen one, then (UDP's checksum 0 meaning none) the field rewritten when TCP or nonzero
 * (clang: `r3 = r9 + 6; r9 += 16; if proto != TCP: r9 = r3; if r9 + 2 > data_end …;
 * *(u16 *)r3`). The IPv4 checksum is bumped first, as the balancer's rewrite does.
 * XDP_TX when a checksum field was rewritten, else XDP_PASS. */
SEC("xdp") int csum_copy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv4 *ip = 0;
	int off = l4_offset(data, end, &ip);
	if (off <= 0)
		return off < 0 ? XDP_DROP : XDP_PASS;
	ip->csum = ~(__u16)(~ip->csum + ip->ttl);
	__u16 *check;
	if (ip->proto == 6)
		check = (__u16 *)((__u8 *)data + off + 16);
	else
		check = (__u16 *)((__u8 *)data + off + 6);
	if ((void *)(check + 1) > end)
		return XDP_DROP;
	if (ip->proto == 6 || *check) {
		*check = ~(__u16)(~*check + 1);
		return XDP_TX;
	}
	return XDP_PASS;
}

/* A copy moved past the L4 header and checked, the original read: `q = l4 + 8;
 * if (q > end) drop; read l4[0..8]`; the copy also spilled across a call to a subprogram that
 * reads through it (the range reaches every frame and every spill). XDP_TX when the sum of the
 * two port bytes chosen is odd. */
static __attribute__((noinline)) int low_bit(volatile __u8 *p, int i)
{
	return p[i] & 1;
}

SEC("xdp") int copy_checked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv4 *ip = 0;
	int off = l4_offset(data, end, &ip);
	if (off <= 0)
		return off < 0 ? XDP_DROP : XDP_PASS;
	__u8 *l4 = (__u8 *)data + off;
	__u8 *q = l4;
	q += 8;
	if ((void *)q > end)
		return XDP_DROP;
	int a = low_bit(l4, 3);
	int b = low_bit(l4, 7);
	return (a + b + l4[1]) & 1 ? XDP_TX : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
