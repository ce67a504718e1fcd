/* A TC classifier on the kernel's `struct __sk_buff`: reads len, protocol, ifindex and mark,
 * sets priority, mark and cb[1], and classifies with direct packet access (the data_end
 * checks the kernel's verifier demands): IPv4/TCP is TC_ACT_OK with mark ^= the destination
 * port, TCP to port 23 and other IPv4 are TC_ACT_SHOT, anything not IPv4 TC_ACT_OK untouched
 * but for priority.                                                                          */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>

#define SEC(name) __attribute__((section(name), used))

SEC("tc")
int tc_classify(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;

	skb->priority = skb->ifindex * 16 + (skb->len & 15);
	if (skb->protocol != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	if (ip->protocol != IPPROTO_TCP)
		return TC_ACT_SHOT;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > data_end)
		return TC_ACT_SHOT;
	if (tcp->dest == __builtin_bswap16(23))
		return TC_ACT_SHOT;
	skb->mark = skb->mark ^ __builtin_bswap16(tcp->dest);
	skb->cb[1] = skb->len;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
