/* A per-tenant packet counter through an array of maps, written so that clang spills the inner
 * map's handle to the stack between its lookup and its null check, and fills it back for the
 * inner lookup (tests/map_in_map.rs): the kernel's verifier decides the spilled copy with the
 * register it checks.
 *
 * The packet's first byte picks the tenant (`& 3`), its second the tenant's counter (`& 3`).
 * Four totals in `stats` are looked up and mixed between the outer lookup and its check, so
 * that the handle, the packet pointer and the totals outlive more calls than the callee-saved
 * registers r6-r9 can hold: clang-19 -O2 keeps the totals and the packet in registers and the
 * handle in a stack slot, which it fills once for the check and once for the inner lookup.
 * No tenant table: XDP_PASS (the totals still mixed); otherwise the tenant's counter is
 * counted and added to every total, its new value is written to the packet's third byte and
 * the verdict is XDP_TX. */
#include "defs.h"

enum {
	XDP_ABORTED = 0,
	XDP_PASS = 2,
	XDP_TX = 3,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
};

#define __array(name, val) typeof(val) *name[]

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

struct counters {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct counters);
} tenants SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

SEC("xdp")
int mim_spill(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if ((void *)(p + 3) > end)
		return XDP_PASS;
	__u32 tenant = p[0] & 3;
	__u32 slot = p[1] & 3;
	void *table = bpf_map_lookup_elem(&tenants, &tenant);
	__u32 k0 = 0, k1 = 1, k2 = 2, k3 = 3;
	__u64 *s0 = bpf_map_lookup_elem(&stats, &k0);
	if (!s0)
		return XDP_ABORTED;
	*s0 += 1;
	__u64 *s1 = bpf_map_lookup_elem(&stats, &k1);
	if (!s1)
		return XDP_ABORTED;
	*s1 += *s0;
	*s0 += *s1;
	__u64 *s2 = bpf_map_lookup_elem(&stats, &k2);
	if (!s2)
		return XDP_ABORTED;
	*s2 += *s1 + *s0;
	*s1 += *s2;
	*s0 ^= *s2;
	__u64 *s3 = bpf_map_lookup_elem(&stats, &k3);
	if (!s3)
		return XDP_ABORTED;
	*s3 += *s2 + *s1 + *s0;
	*s2 ^= *s3;
	*s1 ^= *s3;
	*s0 ^= *s3;
	if (!table)
		return XDP_PASS;
	__u64 *c = bpf_map_lookup_elem(table, &slot);
	if (!c)
		return XDP_ABORTED;
	*c += 1;
	*s0 += *c;
	*s1 += *c;
	*s2 += *c;
	*s3 += *c;
	p[2] = (unsigned char)*c;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
