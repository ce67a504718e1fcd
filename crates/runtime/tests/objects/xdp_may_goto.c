/* may_goto (libbpf's can_loop), for the kernel oracle (tests/may_goto_oracle.rs): a loop over
 * the frame's first 2048 bytes, stopping at its end and bounded by `can_loop` too, sums them.
 * The program writes the sum's low byte at the frame's start and answers XDP_TX when the sum
 * is odd, XDP_PASS when it is even, XDP_DROP for an empty frame. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

/* libbpf's can_loop: true until the run's may_goto counter runs out. */
#define can_loop                                                            \
	({                                                                  \
		__label__ l_break, l_continue;                              \
		int ret = 1;                                                \
		asm volatile goto("may_goto %l[l_break]" :: ::l_break);     \
		goto l_continue;                                            \
	l_break:                                                            \
		ret = 0;                                                    \
	l_continue:;                                                        \
		ret;                                                        \
	})

SEC("xdp")
int xdp_may_goto(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	__u32 sum = 0;
	for (__u32 i = 0; i < 2048 && can_loop; i++) {
		unsigned char *q = data + (i & 2047);
		if (q + 1 > end)
			break;
		sum = sum * 31 + *q;
	}
	if (data + 1 > end)
		return XDP_DROP;
	data[0] = sum;
	return sum & 1 ? XDP_TX : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
