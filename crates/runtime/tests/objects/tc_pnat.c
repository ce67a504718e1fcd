/* A TC port NAT (DNAT): TCP and UDP segments to port 80 of any IPv4 address (a header without
 * options) are sent to 10.0.0.2 port 8080. The L4 checksum follows both changes with
 * l4_csum_replace: the address with BPF_F_PSEUDO_HDR (it is covered through the pseudo-header),
 * the port without (it is in the segment itself), and for UDP with BPF_F_MARK_MANGLED_0 (a
 * checksum of 0, "none", stays 0); the IPv4 header checksum with l3_csum_replace; the new
 * address and port written with skb_store_bytes. TC_ACT_OK, or TC_ACT_SHOT when a helper
 * fails.                                                                                      */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)BPF_FUNC_skb_store_bytes;
static long (*bpf_l3_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to,
				   __u64 size) = (void *)BPF_FUNC_l3_csum_replace;
static long (*bpf_l4_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to,
				   __u64 flags) = (void *)BPF_FUNC_l4_csum_replace;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to,
				  __u32 len) = (void *)BPF_FUNC_skb_load_bytes;

#define L4_OFF (ETH_HLEN + sizeof(struct iphdr))
#define IP_CSUM_OFF (ETH_HLEN + 10)
#define IP_DST_OFF (ETH_HLEN + 16)

SEC("tc")
int tc_pnat(struct __sk_buff *skb)
{
	struct iphdr ip;
	__be16 ports[2];
	__be32 new_dst = __builtin_bswap32(0x0a000002);
	__be16 new_port = __builtin_bswap16(8080);
	__u32 csum_off;
	__u64 mangled = 0;

	if (skb->protocol != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TC_ACT_OK;
	if (ip.ihl != 5 || (ip.frag_off & __builtin_bswap16(0x1fff)))
		return TC_ACT_OK;
	if (ip.protocol == IPPROTO_TCP) {
		csum_off = L4_OFF + 16;
	} else if (ip.protocol == IPPROTO_UDP) {
		csum_off = L4_OFF + 6;
		mangled = BPF_F_MARK_MANGLED_0;
	} else {
		return TC_ACT_OK;
	}
	if (bpf_skb_load_bytes(skb, L4_OFF, ports, sizeof(ports)) < 0)
		return TC_ACT_OK;
	if (ports[1] != __builtin_bswap16(80))
		return TC_ACT_OK;

	if (bpf_l4_csum_replace(skb, csum_off, ip.daddr, new_dst,
				BPF_F_PSEUDO_HDR | mangled | sizeof(new_dst)) < 0)
		return TC_ACT_SHOT;
	if (bpf_l4_csum_replace(skb, csum_off, ports[1], new_port, mangled | sizeof(new_port)) < 0)
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, ip.daddr, new_dst, sizeof(new_dst)) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, IP_DST_OFF, &new_dst, sizeof(new_dst), 0) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, L4_OFF + 2, &new_port, sizeof(new_port), 0) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
