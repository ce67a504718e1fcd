/* Global data: .data, .rodata, .bss and string literals, reached through lddw relocations. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

struct config {
	__u32 a;
	__u32 b;
	__u64 c;
};

/* .data, global and static. */
__u64 hits = 1;
static __u32 table[4] = {10, 20, 30, 40};

/* .rodata: read-only, a const volatile knob as libbpf skeletons use them, and a const array. */
const volatile __u32 knob = 42;
const volatile struct config cfg = {1, 2, 3};

/* .bss, global and static. */
__u64 total;
static __u32 scratch[8];

SEC("xdp")
int globals(struct xdp_md *ctx)
{
	__u32 i = ctx->rx_queue_index & 3;
	hits += 1;
	table[i] += 1;
	total += table[i] + knob + cfg.b;
	scratch[5] = (__u32)cfg.c;
	bpf_trace_printk("hits %llu\n", sizeof("hits %llu\n"), hits);
	bpf_trace_printk("total %llu\n", sizeof("total %llu\n"), total);
	return scratch[5] + table[2];
}
