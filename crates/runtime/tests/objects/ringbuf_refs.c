/* The safe programs of ringbuf_refs.h. */
#include "ringbuf_refs.h"

/* Reserve, early exit with a discard, fill, submit. Returns XDP_PASS for a submitted event,
 * XDP_DROP for a discarded one, XDP_ABORTED when the ring is full. */
SEC("xdp")
int rb_submit(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char *p = data;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return XDP_ABORTED;
	if ((void *)(p + 14) > data_end) {
		bpf_ringbuf_discard(e, 0);
		return XDP_DROP;
	}
	e->len = frame_len(data, data_end);
	e->proto = (__u16)(p[12] << 8 | p[13]);
	e->kind = 0;
	e->ifindex = ctx->ingress_ifindex;
	e->first = p[0];
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

/* The same record submitted or discarded by a branch on the EtherType, through a copy kept
 * across the branch: IPv4 frames are reported (XDP_PASS), others discarded (XDP_DROP). */
SEC("xdp")
int rb_choose(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char *p = data;
	int ipv4;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return XDP_ABORTED;
	if ((void *)(p + 14) > data_end) {
		bpf_ringbuf_discard(e, 0);
		return XDP_DROP;
	}
	ipv4 = p[12] == 0x08 && p[13] == 0x00;
	e->len = frame_len(data, data_end);
	e->proto = (__u16)(p[12] << 8 | p[13]);
	e->kind = 1;
	e->ifindex = ctx->ingress_ifindex;
	e->first = p[0];
	if (ipv4)
		bpf_ringbuf_submit(e, 0);
	else
		bpf_ringbuf_discard(e, 0);
	return ipv4 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
