/* A TC program encapsulating IPv4 in IPv4 (IPIP, protocol 4) towards a tunnel endpoint: the
 * Ethernet padding behind the IPv4 packet, if any, is cut with skb_change_tail (the kernel
 * refuses to change the tail of an encapsulated packet, so this comes first); then
 * skb_adjust_room makes 20 bytes of room after the Ethernet header (BPF_ADJ_ROOM_MAC,
 * BPF_F_ADJ_ROOM_ENCAP_L3_IPV4), and the outer header (10.0.0.1 -> 10.0.0.2, TTL 64, DF, the
 * inner TOS, its checksum from csum_diff) is written there with skb_store_bytes. Other
 * packets pass untouched. cb[0] and cb[1] keep the two helpers' results (1: not called),
 * cb[2] the length after. TC_ACT_OK, or TC_ACT_SHOT when a header is cut or a helper fails. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;
static long (*bpf_csum_diff)(void *from, __u32 from_size, void *to, __u32 to_size,
			     __u32 seed) = (void *)28;
static long (*bpf_skb_change_tail)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)38;
static long (*bpf_skb_adjust_room)(struct __sk_buff *skb, __s32 len_diff, __u32 mode,
				   __u64 flags) = (void *)50;

#define TUNNEL_SRC 0x0a000001 /* 10.0.0.1 */
#define TUNNEL_DST 0x0a000002 /* 10.0.0.2 */
#define IP_DF 0x4000

SEC("tc")
int tc_ipip(struct __sk_buff *skb)
{
	struct iphdr inner, outer = {};
	__u32 want, sum;
	long r;

	skb->cb[0] = 1;
	skb->cb[1] = 1;
	if (skb->protocol != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &inner, sizeof(inner)) < 0)
		return TC_ACT_SHOT;
	want = ETH_HLEN + __builtin_bswap16(inner.tot_len);
	if (want < ETH_HLEN + sizeof(inner) || want > skb->len)
		return TC_ACT_SHOT;
	if (want < skb->len) {
		r = bpf_skb_change_tail(skb, want, 0);
		skb->cb[1] = r;
		if (r < 0)
			return TC_ACT_SHOT;
	}
	r = bpf_skb_adjust_room(skb, sizeof(outer), BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4);
	skb->cb[0] = r;
	if (r < 0)
		return TC_ACT_SHOT;
	outer.version = 4;
	outer.ihl = 5;
	outer.tos = inner.tos;
	outer.tot_len = __builtin_bswap16(__builtin_bswap16(inner.tot_len) + sizeof(outer));
	outer.frag_off = __builtin_bswap16(IP_DF);
	outer.ttl = 64;
	outer.protocol = IPPROTO_IPIP;
	outer.saddr = __builtin_bswap32(TUNNEL_SRC);
	outer.daddr = __builtin_bswap32(TUNNEL_DST);
	sum = bpf_csum_diff(0, 0, (void *)&outer, sizeof(outer), 0);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	outer.check = ~sum;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &outer, sizeof(outer), 0) < 0)
		return TC_ACT_SHOT;
	skb->cb[2] = skb->len;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
