/* An XDP program calling skb_vlan_push, which only TC programs may use: the kernel's verifier
 * and bpfx's both refuse it, naming the helper. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_vlan_push)(void *skb, __u16 proto, __u16 tci) = (void *)18;

SEC("xdp")
int resize(struct xdp_md *ctx)
{
	return bpf_skb_vlan_push(ctx, 0x81, 1) ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
