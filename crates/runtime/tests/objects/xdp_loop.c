/* bpf_loop over an XDP frame, for the kernel oracle (tests/callbacks_oracle.rs): the callback
 * adds each of the first 256 bytes of the frame into a checksum-like sum, stopping at the end
 * of the frame (it returns 1); then the program writes the sum's two bytes at the frame's
 * start and answers XDP_PASS, or XDP_DROP for frames shorter than 2 bytes, or XDP_TX when the
 * sum is a multiple of 5. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

struct sum_ctx {
	unsigned char *data;
	unsigned char *data_end;
	__u32 sum;
	__u32 count;
};

static long add_byte(__u64 i, void *c)
{
	struct sum_ctx *s = c;
	unsigned char *p = s->data + (i & 0xff);
	if (p + 1 > s->data_end)
		return 1;
	s->sum = s->sum * 31 + *p;
	s->count++;
	return 0;
}

SEC("xdp")
int xdp_loop(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *data_end = (void *)(long)ctx->data_end;
	struct sum_ctx s = {data, data_end, 0, 0};

	long n = bpf_loop(256, add_byte, &s, 0);
	if (data + 2 > data_end)
		return XDP_DROP;
	data[0] = s.sum & 0xff;
	data[1] = (s.count + n) & 0xff;
	return s.sum % 5 == 0 ? XDP_TX : XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
