/* A TC program that reclassifies packets as bridges and tunnel endpoints do with
 * bpf_skb_change_type: the type to set is the frame's byte 14 (just after the Ethernet
 * header). The packet's pkt_type before the call, the helper's answer (as a little-endian
 * int) and pkt_type after it are written over bytes 15, 16..20 and 20. TC_ACT_OK, or
 * TC_ACT_SHOT for a frame shorter than 21 bytes.                                           */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_change_type)(struct __sk_buff *skb, __u32 type) = (void *)32;

SEC("tc")
int tc_pkttype(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data;
	__u32 before = skb->pkt_type;
	int ret;

	if ((void *)(p + 21) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	ret = bpf_skb_change_type(skb, p[14]);
	p = (void *)(long)skb->data;
	if ((void *)(p + 21) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	p[15] = (__u8)before;
	__builtin_memcpy(p + 16, &ret, 4);
	p[20] = (__u8)skb->pkt_type;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
