/* A TC forwarder in the style of encapsulating gateways: IPv4 packets for 10.0.0.0/24 leave
 * through bpf_redirect_neigh, the kernel filling in the Ethernet addresses from its neighbour
 * table. The last octet of the destination picks the call: .1 lets the kernel resolve the
 * destination itself (no parameters), .2 names the next hop 10.0.0.254, .3 passes a parameter
 * block one byte short, .4 an unknown flag (both refused with TC_ACT_SHOT). The helper's answer
 * is the verdict, and is also written into the IPv4 header. Other packets: TC_ACT_OK.        */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/socket.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_redirect_neigh)(__u32 ifindex, struct bpf_redir_neigh *params, int plen,
				  __u64 flags) = (void *)152;

#define OUT_IFINDEX 7

SEC("tc")
int tc_neigh(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bpf_redir_neigh nh = {.nh_family = 2 /* AF_INET */,
				     .ipv4_nh = __builtin_bswap32(0x0a0000fe)};
	__u32 dst;
	long ret;

	if ((void *)(ip + 1) > data_end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	dst = __builtin_bswap32(ip->daddr);
	if ((dst & 0xffffff00) != 0x0a000000)
		return TC_ACT_OK;
	/* Each call keeps its own code after it, as separate call sites: the helper's answer is
	 * written over the TOS byte (.1), the TTL (.2) or a byte of the IP id (.3, .4). */
	switch (dst & 0xff) {
	case 1:
		ret = bpf_redirect_neigh(OUT_IFINDEX, 0, 0, 0);
		ip->tos = (__u8)ret;
		return (int)ret;
	case 2:
		ret = bpf_redirect_neigh(OUT_IFINDEX, &nh, sizeof(nh), 0);
		ip->ttl = (__u8)ret;
		return (int)ret;
	case 3:
		ret = bpf_redirect_neigh(OUT_IFINDEX, &nh, sizeof(nh) - 1, 0);
		((__u8 *)&ip->id)[0] = (__u8)ret;
		return (int)ret;
	case 4:
		ret = bpf_redirect_neigh(OUT_IFINDEX, 0, 0, 1);
		((__u8 *)&ip->id)[1] = (__u8)ret;
		return (int)ret;
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
