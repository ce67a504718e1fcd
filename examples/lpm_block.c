/* An IPv4 blocklist in an LPM trie: an XDP program looks up every IPv4 frame's source address
 * (prefix length 32) in `blocklist`; when a listed prefix covers it, the longest one's hit
 * counter is incremented and the frame dropped. Anything else passes. The host fills the
 * trie with {prefixlen, address in network order} keys before running it.
 *
 *   bpfx run examples/lpm_block.o --ctx xdp --packet examples/tcp-syn.bin
 *   => XDP_PASS (2) (the blocklist starts empty)                                         */
#include "bpf_helpers.h"

struct ipv4_lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct ipv4_lpm_key);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} blocklist SEC(".maps");

SEC("xdp")
int xdp_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct ipv4_lpm_key key = { .prefixlen = 32, .addr = ip->saddr };
	__u64 *hits = bpf_map_lookup_elem(&blocklist, &key);
	if (!hits)
		return XDP_PASS;
	__sync_fetch_and_add(hits, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
