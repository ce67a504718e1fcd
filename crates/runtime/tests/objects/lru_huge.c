/* One LRU hash map of 16M entries of 4-byte keys and values: a few hundred bytes of object
 * whose host-side bookkeeping (key table, free list, stamps, index) would take more than a
 * gigabyte full. bpfx creates it and charges it by use, as the kernel has no per-map bound. */
#include "defs.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

SEC("socket")
int count(void *ctx)
{
	__u32 key = 1, one = 1;
	bpf_map_update_elem(&seen, &key, &one, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
