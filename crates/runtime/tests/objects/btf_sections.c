/* Programs in sections that name no program type, as iproute2 loads them:
 *   tc filter add dev eth0 ingress bpf da obj btf_sections.o sec ingress
 *   tc filter add dev eth0 egress bpf da obj btf_sections.o sec egress
 *   ip link set dev eth0 xdp obj btf_sections.o sec mapper
 * Only the first parameter's type (in the object's BTF, with -g) says which context each
 * takes; btf_sections-nobtf.o is the same source without -g, so without BTF. */
#include <linux/bpf.h>

#define __section(s) __attribute__((section(s), used))

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IPV6_BE 0xdd86 /* htons(0x86dd) on the little-endian target */

/* Drops runts (under an Ethernet header) and IPv6; records the length in mark and passes the
 * rest. */
__section("ingress")
int tc_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + 14 > data_end)
		return TC_ACT_SHOT;
	if (skb->protocol == ETH_P_IPV6_BE)
		return TC_ACT_SHOT;
	skb->mark = skb->len;
	return TC_ACT_OK;
}

/* Sets the priority from the interface and the length; drops what ingress marked 0x42. */
__section("egress")
int tc_egress(struct __sk_buff *skb)
{
	skb->priority = skb->ifindex * 16 + (skb->len & 15);
	return skb->mark == 0x42 ? TC_ACT_SHOT : TC_ACT_OK;
}

/* XDP_DROP for runts and multicast destinations, XDP_TX for what arrives on interface 7,
 * else XDP_PASS. */
__section("mapper")
int xdp_mapper(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *data_end = (unsigned char *)(long)ctx->data_end;

	if (data + 14 > data_end)
		return XDP_DROP;
	if (data[0] & 1)
		return XDP_DROP;
	if (ctx->ingress_ifindex == 7)
		return XDP_TX;
	return XDP_PASS;
}

char LICENSE[] __section("license") = "GPL";
