/* The unsafe twins of ringbuf_refs.h, one per CASE (ringbuf_refs_bad_N.c defines it). */
#include "ringbuf_refs.h"

SEC("xdp")
int rb_bad(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char *p = data;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return XDP_ABORTED;
	if ((void *)(p + 14) > data_end) {
#if CASE != 1
		bpf_ringbuf_discard(e, 0);
#endif
		return XDP_DROP;
	}
	e->len = frame_len(data, data_end);
	e->proto = (__u16)(p[12] << 8 | p[13]);
	e->kind = 2;
	e->ifindex = ctx->ingress_ifindex;
	bpf_ringbuf_submit(e, 0);
#if CASE == 2
	e->first = p[0];
#endif
#if CASE == 3
	bpf_ringbuf_submit(e, 0);
#endif
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
