/* The twin of sock_port80.c written with bpf_skb_load_bytes instead of legacy packet loads:
 * a socket filter keeping IPv4 TCP segments to port 80 (first fragments and unfragmented
 * ones) and dropping the rest (0). It keeps the headers only: the Ethernet, IPv4 and TCP
 * headers as their length fields give them, so a capture sees no payload.                  */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;

SEC("socket")
int tcp_port_80_load(struct __sk_buff *skb)
{
	struct ethhdr eth;
	struct iphdr ip;
	struct tcphdr tcp;
	__u32 ihl;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0)
		return 0;
	if (eth.h_proto != __builtin_bswap16(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return 0;
	if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
		return 0;
	if (ip.frag_off & __builtin_bswap16(0x1fff))
		return 0;
	ihl = ip.ihl * 4;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ihl, &tcp, sizeof(tcp)) < 0)
		return 0;
	if (tcp.dest != __builtin_bswap16(80))
		return 0;
	return ETH_HLEN + ihl + tcp.doff * 4;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
