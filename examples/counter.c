/* A packet filter with a hash map of counters: runs on a plain buffer holding an Ethernet
 * frame (r1 = the frame, r2 = its length), counts frames per EtherType in `counters`, and
 * accepts (returns 1) IPv4 frames only. Its section, `mem`, names no kernel program type, so
 * bpfx gives it plain memory (a `socket` section would make it a socket filter).
 *
 *   bpfx run examples/counter.o --mem examples/tcp-syn.bin --dump-maps
 *   => 1 (0x1), then counters: 2048 => 1 (EtherType 0x0800 seen once)                 */
#include "bpf_helpers.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("mem")
int packet_filter(__u8 *frame, __u64 len)
{
	if (len < sizeof(struct ethhdr))
		return 0;
	struct ethhdr *eth = (void *)frame;
	__u32 proto = bpf_ntohs(eth->h_proto);
	__u64 *count = bpf_map_lookup_elem(&counters, &proto);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&counters, &proto, &one, BPF_NOEXIST);
	}
	return proto == ETH_P_IP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
