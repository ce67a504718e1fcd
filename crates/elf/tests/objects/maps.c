/* BTF-defined maps of each kind, used from two programs. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

struct value {
	__u64 packets;
	__u64 bytes;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct value);
	__uint(max_entries, 16);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, 8);
	__uint(value_size, 4);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, __u64);
	__uint(max_entries, 128);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 8);
} jumps SEC(".maps");

/* A static map: referenced through its local symbol. */
static struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u32[3]);
	__uint(max_entries, 2);
} scratch SEC(".maps");

SEC("xdp")
int count(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct value *v = bpf_map_lookup_elem(&stats, &key);
	if (v) {
		v->packets += 1;
		v->bytes += ctx->data_end - ctx->data;
	}
	__u64 flow = ctx->data;
	__u32 one = 1;
	bpf_map_update_elem(&flows, &flow, &one, BPF_ANY);
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&recent, &flow, &now, BPF_ANY);
	bpf_ringbuf_output(&events, &now, sizeof(now), 0);
	__u32 *s = bpf_map_lookup_elem(&scratch, &key);
	if (s)
		s[2] = 1;
	return 2;
}

SEC("tc")
int dispatch(void *skb)
{
	bpf_tail_call(skb, &jumps, 3);
	return 0;
}
