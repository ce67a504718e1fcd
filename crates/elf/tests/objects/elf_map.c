/* An XDP packet counter written the iproute2 way (`ip link set dev X xdp obj elf_map.o`):
 * legacy `maps` definitions of iproute2's struct bpf_elf_map, pinned in the global
 * namespace so every program loaded by tc/ip shares them. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

/* [0] frames seen, [1] frames too short for an Ethernet header, [2] bytes seen. */
struct bpf_elf_map SEC("maps") pkt_stats = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 3,
	.pinning = PIN_GLOBAL_NS,
};

/* Frames per EtherType (network byte order, as read from the frame). */
struct bpf_elf_map SEC("maps") per_proto = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u16),
	.size_value = sizeof(__u64),
	.max_elem = 64,
	.id = 7,
	.pinning = PIN_OBJECT_NS,
};

static __always_inline void bump(__u32 key, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&pkt_stats, &key);
	if (v)
		*v += by;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	bump(0, 1);
	bump(2, data_end - data);
	if (data + 14 > data_end) {
		bump(1, 1);
		return XDP_DROP;
	}
	__u16 proto = *(__u16 *)(data + 12);
	__u64 *n = bpf_map_lookup_elem(&per_proto, &proto);
	if (n) {
		*n += 1;
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&per_proto, &proto, &one, BPF_ANY);
	}
	return XDP_PASS;
}
