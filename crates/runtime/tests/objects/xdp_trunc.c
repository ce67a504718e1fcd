/* An XDP truncation: frames longer than 64 bytes are cut to their first 64 with
 * bpf_xdp_adjust_tail (a negative delta); shorter ones pass as they are. XDP_PASS, or
 * XDP_ABORTED when the tail cannot move.                                                   */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

#define SNAP_LEN 64

static long (*bpf_xdp_adjust_tail)(struct xdp_md *xdp_md, int delta) = (void *)65;

SEC("xdp")
int xdp_trunc(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	long len = data_end - data;

	if (len <= SNAP_LEN)
		return XDP_PASS;
	if (bpf_xdp_adjust_tail(ctx, (int)(SNAP_LEN - len)))
		return XDP_ABORTED;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
