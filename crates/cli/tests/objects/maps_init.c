/* An XDP program that reads maps the host fills before the run (`bpfx run --maps`, tested in
 * crates/cli/tests/maps_init.rs): it writes what it read into `seen`, counts the frame's
 * length in the log2 histogram `lens`, draws two random numbers, and tail-calls slot 0 of
 * `jmp` (`tail` returns XDP_TX; an empty slot falls through to XDP_PASS).
 *
 *   seen[0] = thresholds[1]
 *   seen[1] = ports[7]                  (~0 when absent)
 *   seen[2] = pcpu[0] on the running CPU
 *   seen[3] = outer[0][0]               (~0 when outer[0] holds no map)
 *   seen[4], seen[5] = bpf_get_prandom_u32() twice
 *   lens[log2(frame length)] += 1       (entry 0 for lengths 0 and 1)
 * `pending`, a queue, is only filled by the host.                                       */
#include "bpf_helpers.h"

#define __array(name, val) typeof(val) *name[]
#define BPF_MAP_TYPE_ARRAY_OF_MAPS 12
#define BPF_MAP_TYPE_QUEUE 22

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} thresholds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pcpu SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} lens SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

/* Keyless: the host pushes values (the program does not read it). */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 4);
	__type(value, __u32);
} pending SEC(".maps");

/* floor(log2(v)), 0 for v = 0: halve the range the top bit is in, five times. */
static __attribute__((always_inline)) __u32 log2_u32(__u32 v)
{
	__u32 r, s;

	r = (v > 0xffff) << 4;
	v >>= r;
	s = (v > 0xff) << 3;
	v >>= s;
	r |= s;
	s = (v > 0xf) << 2;
	v >>= s;
	r |= s;
	s = (v > 0x3) << 1;
	v >>= s;
	r |= s;
	return r | (v >> 1);
}

static __attribute__((always_inline)) void put(__u32 i, __u64 v)
{
	__u64 *slot = bpf_map_lookup_elem(&seen, &i);

	if (slot)
		*slot = v;
}

static __attribute__((always_inline)) __u64 get(void *map, __u32 k, __u64 absent)
{
	__u64 *v = bpf_map_lookup_elem(map, &k);

	return v ? *v : absent;
}

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;
	__u32 slot = log2_u32(len);
	__u64 *count = bpf_map_lookup_elem(&lens, &slot);
	__u32 zero = 0;
	void *in;

	if (count)
		__sync_fetch_and_add(count, 1);
	put(0, get(&thresholds, 1, ~0ULL));
	put(1, get(&ports, 7, ~0ULL));
	put(2, get(&pcpu, 0, ~0ULL));
	in = bpf_map_lookup_elem(&outer, &zero);
	put(3, in ? get(in, 0, ~1ULL) : ~0ULL);
	put(4, bpf_get_prandom_u32());
	put(5, bpf_get_prandom_u32());
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_PASS;
}

SEC("xdp")
int tail(struct xdp_md *ctx)
{
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
