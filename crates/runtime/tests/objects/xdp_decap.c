/* An XDP IP-in-IP decapsulation: an IPv4 packet whose protocol is IPIP (4) or IPv6 (41, "6in4")
 * and whose header has no options loses its outer IPv4 header. The Ethernet header is saved,
 * the head moved 20 bytes in with bpf_xdp_adjust_head, and the header written back in front of
 * the inner packet with the Ethernet type of what it now carries. XDP_PASS; XDP_DROP when the
 * head cannot move; anything else passes untouched.                                          */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_xdp_adjust_head)(struct xdp_md *xdp_md, int delta) = (void *)44;

SEC("xdp")
int xdp_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *outer = data + sizeof(*eth);
	struct ethhdr saved;
	__u16 inner_type;

	if ((void *)(outer + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != __builtin_bswap16(ETH_P_IP) || outer->ihl != 5)
		return XDP_PASS;
	if (outer->protocol == IPPROTO_IPIP)
		inner_type = ETH_P_IP;
	else if (outer->protocol == IPPROTO_IPV6)
		inner_type = ETH_P_IPV6;
	else
		return XDP_PASS;
	__builtin_memcpy(&saved, eth, sizeof(saved));
	if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct iphdr)))
		return XDP_DROP;
	/* Every packet pointer is stale after the helper: load and check them again. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth, &saved, sizeof(saved));
	eth->h_proto = __builtin_bswap16(inner_type);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
