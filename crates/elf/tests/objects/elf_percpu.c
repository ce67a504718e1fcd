/* The XDP packet counter of elf_map.c with per-CPU maps, written the iproute2 way: legacy
 * `maps` definitions of iproute2's struct bpf_elf_map, no BTF. Each CPU counts in its own
 * slot; the loader (or the host) sums the slots. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

/* [0] frames seen, [1] frames too short for an Ethernet header, [2] bytes seen; per CPU. */
struct bpf_elf_map SEC("maps") cpu_stats = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 3,
	.pinning = PIN_GLOBAL_NS,
};

/* Frames per EtherType (network byte order, as read from the frame), per CPU. */
struct bpf_elf_map SEC("maps") cpu_proto = {
	.type = BPF_MAP_TYPE_PERCPU_HASH,
	.size_key = sizeof(__u16),
	.size_value = sizeof(__u64),
	.max_elem = 64,
};

static __always_inline void bump(__u32 key, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&cpu_stats, &key);
	if (v)
		*v += by;
}

SEC("xdp")
int xdp_cpu_count(struct xdp_md *ctx)
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
	__u64 *n = bpf_map_lookup_elem(&cpu_proto, &proto);
	if (n) {
		*n += 1;
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&cpu_proto, &proto, &one, BPF_ANY);
	}
	return XDP_PASS;
}
