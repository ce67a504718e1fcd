/* An XDP program that parses Ethernet, IPv4 and TCP with the `data_end` checks the kernel's
 * verifier demands, counts what it sees in the `stats` array, and drops TCP to port 23.
 *
 *   bpfx run examples/xdp_parse.o --ctx xdp --packet examples/tcp-syn.bin --dump-maps
 *   => XDP_PASS (2), then stats 0..3 (non-IP, IPv4 other, TCP, TCP SYN) = 0, 0, 1, 1
 * examples/telnet-syn.bin gives XDP_DROP (1); examples/arp.bin XDP_PASS with stats[0] = 1.   */
#include "bpf_helpers.h"

enum { STAT_NON_IP, STAT_IP_OTHER, STAT_TCP, STAT_TCP_SYN, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &what);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int xdp_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(STAT_NON_IP);
		return XDP_PASS;
	}
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_ABORTED;
	if (ip->protocol != IPPROTO_TCP) {
		count(STAT_IP_OTHER);
		return XDP_PASS;
	}
	struct tcphdr *tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return XDP_ABORTED;
	count(STAT_TCP);
	if (tcp->syn && !tcp->ack)
		count(STAT_TCP_SYN);
	if (tcp->dest == bpf_htons(23))
		return XDP_DROP;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
