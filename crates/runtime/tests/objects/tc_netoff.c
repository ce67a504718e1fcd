/* Where a TC program's network header is after the helpers that move the packet: per
 * skb->mark, nothing (0), two VLAN pushes (1: the second writes the first tag into the
 * packet), a pop (2) or skb_change_head of 6 bytes (3); then the first two bytes at the
 * network header (skb_load_bytes_relative, BPF_HDR_START_NET) go to cb[0], and the result of
 * skb_change_tail to skb->priority bytes (refused below the network header) to cb[1]. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, __u16 proto, __u16 tci) = (void *)18;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)19;
static long (*bpf_skb_change_tail)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)38;
static long (*bpf_skb_change_head)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)43;
static long (*bpf_skb_load_bytes_relative)(const void *skb, __u32 offset, void *to, __u32 len,
					   __u32 start_header) = (void *)68;

SEC("tc")
int tc_netoff(struct __sk_buff *skb)
{
	__u32 mode = skb->mark;
	__u16 word = 0;

	if (mode == 1) {
		bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 5);
		bpf_skb_vlan_push(skb, __builtin_bswap16(0x8100), 6);
	} else if (mode == 2) {
		bpf_skb_vlan_pop(skb);
	} else if (mode == 3) {
		bpf_skb_change_head(skb, 6, 0);
	}
	bpf_skb_load_bytes_relative(skb, 0, &word, sizeof(word), BPF_HDR_START_NET);
	skb->cb[0] = word;
	skb->cb[1] = bpf_skb_change_tail(skb, skb->priority, 0);
	return 0;
}

char _license[] SEC("license") = "GPL";
