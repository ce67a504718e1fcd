/* A tail-call dispatcher set up the libbpf way: a program array declared with
 * __array(values, ...) and filled statically by its `.values` initialiser. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

/* [0] IPv4 frames, [1] frames no program handles, [2] ARP frames. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("xdp") int handle_ipv4(struct xdp_md *ctx);
SEC("xdp") int handle_arp(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} handlers SEC(".maps") = {
	.values = {
		[0] = (void *)&handle_ipv4,
		[2] = (void *)&handle_arp,
	},
};

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&seen, &key);
	if (v)
		*v += 1;
}

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 14 > data_end)
		return XDP_DROP;
	__u8 hi = *(__u8 *)(data + 12), lo = *(__u8 *)(data + 13);
	__u16 proto = (__u16)hi << 8 | lo;
	if (proto == 0x0800)
		bpf_tail_call(ctx, &handlers, 0);
	else if (proto == 0x0806)
		bpf_tail_call(ctx, &handlers, 2);
	else if (proto == 0x86dd)
		bpf_tail_call(ctx, &handlers, 1); /* slot 1 is empty: the call falls through */
	count(1);
	return XDP_PASS;
}

SEC("xdp")
int handle_ipv4(struct xdp_md *ctx)
{
	count(0);
	return XDP_PASS;
}

SEC("xdp")
int handle_arp(struct xdp_md *ctx)
{
	count(2);
	return XDP_DROP;
}
