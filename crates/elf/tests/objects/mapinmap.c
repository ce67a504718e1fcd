/* BTF-defined maps of maps with their inner definitions and static initialisers, a ring
 * buffer sized the way libbpf rounds it, and placement members (flags, NUMA node, pinning). */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner allow_v4 SEC(".maps");
struct inner allow_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct inner);
} policies SEC(".maps") = {
	.values = {
		[4] = &allow_v4,
		[6] = &allow_v6,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 32);
		__type(key, __u32);
		__type(value, __u32);
	});
} by_slot SEC(".maps");

/* 5000 bytes: libbpf rounds it up to 8192, a power-of-two number of pages. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 5000);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(numa_node, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pinned SEC(".maps");

/* A bloom filter with three hash functions (map_extra's low 4 bits). */
struct {
	__uint(type, 30 /* BPF_MAP_TYPE_BLOOM_FILTER */);
	__uint(max_entries, 256);
	__type(value, __u64);
	__uint(map_extra, 3);
} seen SEC(".maps");

SEC("xdp")
int xdp_policy(struct xdp_md *ctx)
{
	__u32 family = 4, rule = 0;
	void *rules = bpf_map_lookup_elem(&policies, &family);
	if (!rules)
		return XDP_PASS;
	__u64 *hits = bpf_map_lookup_elem(rules, &rule);
	if (hits)
		*hits += 1;
	__u64 one = 1;
	bpf_map_update_elem(&pinned, &rule, &one, BPF_ANY);
	return XDP_PASS;
}
