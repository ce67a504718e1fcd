/* A TC entry program and its tail call in the section names cilium/ebpf's loader accepts
 * (`tc/entry`, `tc/tail`: it matches `tc` as a prefix), with BTF maps pinned in the ways
 * loaders other than libbpf define: a program array with cilium's CILIUM_PIN_REPLACE (16,
 * which its agent rewrites before loading) beside libbpf's LIBBPF_PIN_BY_NAME (1). */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

#define PIN_REPLACE 16

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 4);
	__uint(max_entries, 4);
	__uint(pinning, PIN_REPLACE);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} marks SEC(".maps");

SEC("tc/tail")
int tail_count(void *skb)
{
	__u32 key = 1;
	__u64 one = 1, *n = bpf_map_lookup_elem(&marks, &key);

	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&marks, &key, &one, BPF_ANY);
	return 0;
}

SEC("tc/entry")
int entry(void *skb)
{
	bpf_tail_call(skb, &calls, 0);
	return 2; /* TC_ACT_SHOT when the slot is empty */
}
