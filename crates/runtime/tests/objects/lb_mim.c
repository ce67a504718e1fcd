/* An XDP load balancer that picks its backend table through a map of maps.
 *
 * `services` (HASH_OF_MAPS) maps a service id, the TCP destination port's low 7 bits (libbpf
 * wants `.values` keys below max_entries), to an ARRAY of backends; its `.values` initialiser
 * installs `web_backends` for service 80 (port 80), and the host adds
 * tables for other services at run time. The backend is `source port & 3`; the program
 * rewrites the destination IPv4 address to the backend's, counts the packet in the backend's
 * entry and sends it back out (XDP_TX). No service: XDP_PASS; an empty backend (address 0):
 * XDP_DROP. */
#include "defs.h"

#define __array(name, val) typeof(val) *name[]

enum {
	XDP_ABORTED = 0,
	XDP_DROP = 1,
	XDP_PASS = 2,
	XDP_TX = 3,
	BPF_MAP_TYPE_HASH_OF_MAPS = 13,
};

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

struct backend {
	__u32 daddr; /* network order, as in the packet */
	__u32 pad;
	__u64 packets;
};

struct backends {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct backend);
} web_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 128);
	__type(key, __u32);
	__array(values, struct backends);
} services SEC(".maps") = {
	.values = { [80] = &web_backends },
};

SEC("xdp")
int lb(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	if ((void *)(p + 38) > end)
		return XDP_PASS;
	if (p[12] != 0x08 || p[13] != 0x00 || p[23] != 6)
		return XDP_PASS;
	__u32 sport = ((__u32)p[34] << 8) | p[35];
	__u32 service = p[37] & 0x7f;
	void *table = bpf_map_lookup_elem(&services, &service);
	if (!table)
		return XDP_PASS;
	__u32 idx = sport & 3;
	struct backend *b = bpf_map_lookup_elem(table, &idx);
	if (!b)
		return XDP_ABORTED;
	if (!b->daddr)
		return XDP_DROP;
	__sync_fetch_and_add(&b->packets, 1);
	__builtin_memcpy(p + 30, &b->daddr, 4);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
