/* An XDP program that forwards through a DEVMAP: the egress port is the low three bits of the
 * destination MAC's last byte; `bpf_redirect_map` gives XDP_REDIRECT when `tx_ports` holds that
 * port, and its flags' fallback (XDP_PASS) otherwise. Each verdict is counted per port. */
#include "defs.h"

enum {
	XDP_PASS = 2,
	XDP_REDIRECT = 4,
	BPF_MAP_TYPE_DEVMAP = 14,
};

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

/* [port][0]: redirected, [port][1]: passed. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64[2]);
} verdicts SEC(".maps");

SEC("xdp")
int forward(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if ((void *)(p + 6) > end)
		return XDP_PASS;
	__u32 port = p[5] & 7;
	long act = bpf_redirect_map(&tx_ports, port, XDP_PASS);
	__u64 *count = bpf_map_lookup_elem(&verdicts, &port);
	if (count)
		__sync_fetch_and_add(&count[act == XDP_REDIRECT ? 0 : 1], 1);
	return act;
}

char LICENSE[] SEC("license") = "GPL";
