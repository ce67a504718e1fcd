/* A TC program marking traffic Expedited Forwarding: the DSCP of IPv4 and IPv6 packets becomes
 * EF (46), their ECN bits kept. IPv4: the header's first 16-bit word (version/IHL and TOS) is
 * read with skb_load_bytes, the header checksum fixed with the 2-byte form of
 * l3_csum_replace, the word written back with skb_store_bytes. IPv6: the traffic class, split
 * across the header's first two bytes, rewritten with direct packet access (no header
 * checksum). Anything else passes untouched. TC_ACT_OK, or TC_ACT_SHOT when a helper fails
 * or the IPv6 header is cut.                                                               */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static long (*bpf_l3_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to,
				   __u64 size) = (void *)10;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;

#define DSCP_EF 46
#define IP_CSUM_OFF (ETH_HLEN + 10)

SEC("tc")
int tc_dscp(struct __sk_buff *skb)
{
	void *data, *data_end;
	__u8 *v6;
	__u16 word, new_word;
	__u8 tos;

	if (skb->protocol == __builtin_bswap16(ETH_P_IP)) {
		if (bpf_skb_load_bytes(skb, ETH_HLEN, &word, 2) < 0)
			return TC_ACT_SHOT;
		tos = ((__u8 *)&word)[1];
		new_word = word;
		((__u8 *)&new_word)[1] = (DSCP_EF << 2) | (tos & 3);
		if (new_word == word)
			return TC_ACT_OK;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, word, new_word, 2) < 0)
			return TC_ACT_SHOT;
		if (bpf_skb_store_bytes(skb, ETH_HLEN, &new_word, 2, 0) < 0)
			return TC_ACT_SHOT;
		return TC_ACT_OK;
	}
	if (skb->protocol == __builtin_bswap16(ETH_P_IPV6)) {
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		v6 = data + ETH_HLEN;
		if ((void *)(v6 + sizeof(struct ipv6hdr)) > data_end)
			return TC_ACT_SHOT;
		/* version(4) | traffic class(8) | flow label(20): DSCP is the class's top 6 bits. */
		v6[0] = (v6[0] & 0xf0) | (DSCP_EF >> 2);
		v6[1] = (v6[1] & 0x3f) | ((DSCP_EF & 3) << 6);
		return TC_ACT_OK;
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
