/* Legacy `maps` section: one struct bpf_map_def per map, found through its symbol. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

struct bpf_map_def SEC("maps") counters = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 64,
};

struct bpf_map_def SEC("maps") sessions = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = 16,
	.value_size = 32,
	.max_entries = 512,
	.map_flags = BPF_F_NO_PREALLOC,
};

SEC("socket")
int legacy(void *skb)
{
	__u32 key = 3;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);
	if (v)
		*v += 1;
	char k[16] = {};
	bpf_map_delete_elem(&sessions, k);
	return 0;
}
