/* A TC program rewriting the IPv4 destination of UDP packets to 10.0.0.2 with the kernel's
 * socket-buffer helpers, keeping both checksums right: the header read with skb_load_bytes,
 * the UDP checksum updated from a csum_diff of the addresses (l4_csum_replace with
 * BPF_F_PSEUDO_HDR and BPF_F_MARK_MANGLED_0), the IPv4 checksum with l3_csum_replace, the
 * address written with skb_store_bytes. TC_ACT_OK, or TC_ACT_SHOT when a helper fails.     */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static long (*bpf_l3_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to,
				   __u64 size) = (void *)10;
static long (*bpf_l4_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to,
				   __u64 flags) = (void *)11;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;
static __s64 (*bpf_csum_diff)(__be32 *from, __u32 from_size, __be32 *to, __u32 to_size,
			      __u32 seed) = (void *)28;

#define UDP_CSUM_OFF (ETH_HLEN + sizeof(struct iphdr) + 6)
#define IP_CSUM_OFF (ETH_HLEN + 10)
#define IP_DST_OFF (ETH_HLEN + 16)

SEC("tc")
int tc_nat(struct __sk_buff *skb)
{
	struct iphdr ip;
	__be32 old_dst, new_dst = __builtin_bswap32(0x0a000002);
	__s64 diff;

	if (skb->protocol != __builtin_bswap16(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return TC_ACT_SHOT;
	if (ip.protocol != IPPROTO_UDP || ip.ihl != 5)
		return TC_ACT_OK;
	old_dst = ip.daddr;
	diff = bpf_csum_diff(&old_dst, 4, &new_dst, 4, 0);
	if (bpf_l4_csum_replace(skb, UDP_CSUM_OFF, 0, diff,
				BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0) < 0)
		return TC_ACT_SHOT;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_dst, new_dst, 4) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, IP_DST_OFF, &new_dst, 4, 0) < 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
