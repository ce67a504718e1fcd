/* A TC program marking congestion as an AQM or a rate limiter does: bpf_skb_ecn_set_ce sets
 * the packet's ECN field to CE when it carries ECT(0) or ECT(1) (fixing the IPv4 header
 * checksum). The verdict is the helper's answer: 1 when the packet is (now) marked CE, else 0. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_ecn_set_ce)(struct __sk_buff *skb) = (void *)97;

SEC("tc")
int tc_ecn(struct __sk_buff *skb)
{
	return bpf_skb_ecn_set_ce(skb);
}

char _license[] SEC("license") = "GPL";
