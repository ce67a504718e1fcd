/* A TC program turning a frame's 802.1Q tag into a QinQ pair: the frame's own tag (VLAN id V,
 * read with direct packet access) is popped with skb_vlan_pop, a customer tag 802.1Q with id
 * V + 100 pushed with skb_vlan_push (it goes into the socket buffer's VLAN metadata, as a
 * device offloading tags would have it), then a service tag 802.1ad with id 300 (the customer
 * tag moves into the packet after the MAC addresses, the service tag into the metadata). An
 * untagged frame gets ids 100 and 300. What the program saw is left in cb[]: the popped id,
 * then vlan_present, vlan_tci, vlan_proto and (len << 16 | protocol) after the pushes.
 * TC_ACT_OK, or TC_ACT_SHOT when a helper fails or the pushed tag is not where it belongs. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, __u16 proto, __u16 tci) = (void *)18;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)19;

#define VID_MASK 0x0fff
#define SERVICE_VID 300

SEC("tc")
int tc_vlan(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *eth = data;
	__u16 vid = 0;

	if (data + ETH_HLEN + 4 <= data_end &&
	    skb->protocol == __builtin_bswap16(ETH_P_8021Q))
		vid = ((eth[14] << 8) | eth[15]) & VID_MASK;
	if (bpf_skb_vlan_pop(skb) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_vlan_push(skb, __builtin_bswap16(ETH_P_8021Q), vid + 100) < 0)
		return TC_ACT_SHOT;
	if (bpf_skb_vlan_push(skb, __builtin_bswap16(ETH_P_8021AD), SERVICE_VID) < 0)
		return TC_ACT_SHOT;
	skb->cb[0] = vid;
	/* One load per field (the kernel refuses a load spanning two). */
	skb->cb[1] = *(volatile __u32 *)&skb->vlan_present;
	skb->cb[2] = *(volatile __u32 *)&skb->vlan_tci;
	skb->cb[3] = *(volatile __u32 *)&skb->vlan_proto;
	skb->cb[4] = skb->len << 16 | skb->protocol;
	/* The helpers moved the packet: its pointers are read again. */
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if (data + ETH_HLEN + 4 > data_end)
		return TC_ACT_SHOT;
	if (eth[12] != 0x81 || eth[13] != 0x00 || (((eth[14] << 8) | eth[15]) & VID_MASK) != vid + 100)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
