/* An XDP program whose verdicts depend only on bpf_get_prandom_u32() (tested in
 * crates/cli/tests/replay.rs: `bpfx replay --seed S --threads N` is reproducible): it drops a
 * frame when the low bit of a random number is 1 and passes it otherwise, and adds every
 * number it drew to its CPU's slot of the per-CPU array `drawn` (entry 0: the sum; entry 1:
 * the number of draws).                                                                     */
#include "bpf_helpers.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} drawn SEC(".maps");

SEC("xdp")
int random_drop(struct xdp_md *ctx)
{
	__u32 r = bpf_get_prandom_u32();
	__u32 k = 0;
	__u64 *sum = bpf_map_lookup_elem(&drawn, &k);
	k = 1;
	__u64 *n = bpf_map_lookup_elem(&drawn, &k);

	if (sum && n) {
		*sum += r;
		*n += 1;
	}
	return (r & 1) ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
