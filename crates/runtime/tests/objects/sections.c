/* Programs in the sections older tools used and in sections of types bpfx does not model:
 * `xdp_prog` (the kernel samples' XDP name) must get the XDP context, the kprobe its
 * pt_regs, the cgroup_skb program its own __sk_buff, and the flow dissector must be refused,
 * never run as plain memory.                                                                 */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

/* XDP_DROP for packets shorter than an Ethernet header, else XDP_PASS, or XDP_TX when the
 * packet arrived on interface 7. */
SEC("xdp_prog")
int xdp_legacy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + 14 > data_end)
		return XDP_DROP;
	if (ctx->ingress_ifindex == 7)
		return XDP_TX;
	return XDP_PASS;
}

SEC("kprobe/do_sys_open")
int probe(void *ctx)
{
	return *(int *)ctx;
}

SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
	return skb->len > 100;
}

/* A type bpfx does not model: refused unless run as another (the same code as TC's). */
SEC("flow_dissector")
int flow_len(struct __sk_buff *skb)
{
	return skb->len > 100;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
