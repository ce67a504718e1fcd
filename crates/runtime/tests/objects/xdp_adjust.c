/* A probe of the XDP adjust helpers for the kernel oracle test: the frame's first byte picks
 * the helper (1 xdp_adjust_head, 2 xdp_adjust_tail), bytes 4..8 hold the
 * delta (little-endian int); the verdict is the helper's return value (0 or a negative errno),
 * and the frame is left as the helper made it. Frames shorter than 8 bytes: XDP_ABORTED; an
 * unknown helper: XDP_PASS.                                                                  */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_xdp_adjust_head)(struct xdp_md *xdp_md, int delta) = (void *)44;
static long (*bpf_xdp_adjust_tail)(struct xdp_md *xdp_md, int delta) = (void *)65;

SEC("xdp")
int xdp_adjust(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char op;
	int delta;

	if (data + 8 > data_end)
		return XDP_ABORTED;
	op = *(unsigned char *)data;
	delta = *(int *)(data + 4);
	switch (op) {
	case 1:
		return (int)bpf_xdp_adjust_head(ctx, delta);
	case 2:
		return (int)bpf_xdp_adjust_tail(ctx, delta);
	default:
		return XDP_PASS;
	}
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
