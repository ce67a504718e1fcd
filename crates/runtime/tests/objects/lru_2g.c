/* One LRU hash map declared for 4.5 Mi connection-tracking entries (16-byte keys, 8-byte
 * values), the shape of cilium's conntrack tables: full, it would take more than 2 GiB as bpfx
 * bounds it, but creation reserves only its values' address space (72 MiB) and charges a few
 * kilobytes; its slots are charged a chunk at a time as they are first used. It loads and runs
 * under the default 1 GiB memory limit (tests/memory.rs). */
#include "defs.h"

typedef unsigned short __u16;

struct ct_key {
	__u32 saddr, daddr;
	__u16 sport, dport;
	__u32 proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4718592);
	__type(key, struct ct_key);
	__type(value, __u64);
} ct SEC(".maps");

/* Counts the packets of one flow: 1 for the first, which creates the entry. */
SEC("socket")
int track(void *ctx)
{
	struct ct_key key = { .saddr = 1, .daddr = 2, .sport = 3, .dport = 4, .proto = 6 };
	__u64 one = 1, *n = bpf_map_lookup_elem(&ct, &key);

	if (n) {
		__sync_fetch_and_add(n, 1);
		return (int)*n;
	}
	bpf_map_update_elem(&ct, &key, &one, 1 /* BPF_NOEXIST */);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
