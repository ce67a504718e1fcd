/* A TC ingress program in the style of container networking datapaths: IPv4 packets for
 * 10.0.0.0/24 that a host device receives go straight to a workload's veth peer with
 * bpf_redirect_peer, skipping the host's backlog queue. The last octet of the destination
 * picks the call: .1 redirects to the peer of ifindex 9, .2 passes an unknown flag (refused with
 * TC_ACT_SHOT). The helper's answer is the verdict, and is also written into the IPv4 header
 * (the TOS byte for .1, the TTL for .2). Other packets: TC_ACT_OK.                              */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)155;

#define WORKLOAD_IFINDEX 9

SEC("tc")
int tc_peer(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__u32 dst;
	long ret;

	if ((void *)(ip + 1) > data_end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	dst = __builtin_bswap32(ip->daddr);
	if ((dst & 0xffffff00) != 0x0a000000)
		return TC_ACT_OK;
	switch (dst & 0xff) {
	case 1:
		ret = bpf_redirect_peer(WORKLOAD_IFINDEX, 0);
		ip->tos = (__u8)ret;
		return (int)ret;
	case 2:
		ret = bpf_redirect_peer(WORKLOAD_IFINDEX, 1);
		ip->ttl = (__u8)ret;
		return (int)ret;
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
