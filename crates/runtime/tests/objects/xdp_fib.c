/* An XDP IPv4/IPv6 router on bpf_fib_lookup: for a packet whose TTL (hop limit) allows one more
 * hop it asks the forwarding table for the route from the ingress device; when the route is
 * resolved (BPF_FIB_LKUP_RET_SUCCESS) it writes the next hop's MAC as destination and the
 * egress device's as source, decrements the TTL (IPv4: the header checksum updated
 * incrementally, RFC 1624) or the hop limit, and redirects to the egress device. Not forwarded
 * (BPF_FIB_LKUP_RET_NOT_FWDED, NO_NEIGH, FRAG_NEEDED, ..., or a TTL about to expire): XDP_PASS,
 * for the stack to deal with; a blackhole, unreachable or prohibit route: XDP_DROP.
 * `results[code]` counts the lookups by return code (slot 15: negative errors), and `last`
 * keeps the last lookup's egress ifindex and mtu_result.                                     */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

#define AF_INET 2
#define AF_INET6 10

static long (*bpf_fib_lookup)(void *ctx, struct bpf_fib_lookup *params, int plen,
			      __u32 flags) = (void *)BPF_FUNC_fib_lookup;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)BPF_FUNC_redirect;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} results SEC(".maps");

/* [0]: the egress ifindex, [1]: mtu_result. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32[2]);
} last SEC(".maps");

/* `check` after the 16-bit word it covers went from `from` to `to` (RFC 1624, eqn. 3:
 * HC' = ~(~HC + ~m + m')), all in the same byte order.                                        */
static __u16 csum_update16(__u16 check, __u16 from, __u16 to)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~from;
	sum += to;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __attribute__((always_inline)) void count(long rc, struct bpf_fib_lookup *fib)
{
	__u32 key = rc < 0 || rc > 14 ? 15 : (__u32)rc;
	__u64 *n = bpf_map_lookup_elem(&results, &key);
	__u32 zero = 0;
	__u32 *l = bpf_map_lookup_elem(&last, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
	if (l) {
		l[0] = fib->ifindex;
		l[1] = fib->mtu_result;
	}
}

SEC("xdp")
int xdp_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct ipv6hdr *ip6;
	struct bpf_fib_lookup fib;
	long rc;

	__builtin_memset(&fib, 0, sizeof(fib));
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto == __builtin_bswap16(ETH_P_IP)) {
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return XDP_DROP;
		if (ip->ttl <= 1)
			return XDP_PASS;
		fib.family = AF_INET;
		fib.tos = ip->tos;
		fib.l4_protocol = ip->protocol;
		fib.tot_len = __builtin_bswap16(ip->tot_len);
		fib.ipv4_src = ip->saddr;
		fib.ipv4_dst = ip->daddr;
	} else if (eth->h_proto == __builtin_bswap16(ETH_P_IPV6)) {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		if (ip6->hop_limit <= 1)
			return XDP_PASS;
		fib.family = AF_INET6;
		fib.flowinfo = *(__be32 *)ip6 & __builtin_bswap32(0x0fffffff);
		fib.l4_protocol = ip6->nexthdr;
		fib.tot_len = __builtin_bswap16(ip6->payload_len) + sizeof(*ip6);
		__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	} else {
		return XDP_PASS;
	}
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	count(rc, &fib);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		break;
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		return XDP_DROP;
	default:
		return XDP_PASS;
	}

	/* The header again, by the family the lookup was for (the pointers are not kept across
	 * the branches, each is proven where it is used). */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if (fib.family == AF_INET) {
		__u16 from;

		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return XDP_DROP;
		/* ttl and protocol share a 16-bit word of the header. */
		from = *(__u16 *)&ip->ttl;
		ip->ttl--;
		ip->check = csum_update16(ip->check, from, *(__u16 *)&ip->ttl);
	} else {
		ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return XDP_DROP;
		ip6->hop_limit--;
	}
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

char _license[] SEC("license") = "GPL";
