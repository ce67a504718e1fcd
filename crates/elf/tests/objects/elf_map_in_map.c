/* iproute2's map-in-map links: an ARRAY_OF_MAPS whose inner_id names the id of its inner
 * template, and inner maps whose inner_idx puts them at that key of the outer map. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

#define RULES_ID 21

struct bpf_elf_map SEC("maps") v4_rules = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 16,
	.id = RULES_ID,
	.inner_idx = 0,
	.pinning = PIN_GLOBAL_NS,
};

struct bpf_elf_map SEC("maps") v6_rules = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 16,
	.id = RULES_ID,
	.inner_idx = 2,
};

/* Not in the outer map: inner_idx is -1. */
struct bpf_elf_map SEC("maps") spare_rules = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 16,
	.id = RULES_ID,
	.inner_idx = -1,
};

struct bpf_elf_map SEC("maps") rule_sets = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 4,
	.inner_id = RULES_ID,
	.pinning = PIN_GLOBAL_NS,
};

SEC("classifier")
int cls_rules(void *skb)
{
	__u32 set = 2, rule = 0;
	void *inner = bpf_map_lookup_elem(&rule_sets, &set);
	if (!inner)
		return 0;
	__u32 *verdict = bpf_map_lookup_elem(inner, &rule);
	return verdict ? *verdict : 0;
}
