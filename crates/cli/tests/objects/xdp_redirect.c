/* An XDP program that forwards by the destination MAC's last byte, for `bpfx replay`'s
 * redirect counts: its low two bits 0 pass the frame untouched; 1, 2, 3 overwrite that byte
 * with 0xee and bpf_redirect the frame to ifindex 11, 12, 13 (XDP_REDIRECT). A frame shorter
 * than a MAC address is dropped.                                                            */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;

SEC("xdp")
int xdp_redirect(struct xdp_md *ctx)
{
	unsigned char *p = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	unsigned char port;

	if ((void *)(p + 6) > data_end)
		return XDP_DROP;
	port = p[5] & 3;
	if (port == 0)
		return XDP_PASS;
	p[5] = 0xee;
	return (int)bpf_redirect(10 + port, 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
