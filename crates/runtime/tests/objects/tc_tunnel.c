/* A TC program in the style of a collect-metadata tunnel endpoint: it sets the packet's tunnel
 * key with bpf_skb_set_tunnel_key and reads it back with bpf_skb_get_tunnel_key. The frame
 * after the 14-byte Ethernet header says what to do:
 *   byte 14: the size given to set (clamped to 1..44), byte 15 set's flags (0xff: no set);
 *   byte 16: the size given to get (clamped to 1..44), byte 17 get's flags (0xff: no get);
 *   bytes 18..62: the struct bpf_tunnel_key set is given.
 * It writes back set's answer (little-endian int) over bytes 62..66, get's over 66..70, and
 * the 44 bytes of get's buffer (filled with 0xa5 before the call) over 70..114. TC_ACT_OK, or
 * TC_ACT_SHOT for a frame shorter than 114 bytes.                                          */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_set_tunnel_key)(struct __sk_buff *skb, struct bpf_tunnel_key *key,
				      __u32 size, __u64 flags) = (void *)21;
static long (*bpf_skb_get_tunnel_key)(struct __sk_buff *skb, struct bpf_tunnel_key *key,
				      __u32 size, __u64 flags) = (void *)20;

static __u32 clamp(__u8 v)
{
	__u32 s = v;

	if (s < 1)
		s = 1;
	if (s > sizeof(struct bpf_tunnel_key))
		s = sizeof(struct bpf_tunnel_key);
	return s;
}

SEC("tc")
int tc_tunnel(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data;
	struct bpf_tunnel_key in, out;
	int set = 0, get = 0;

	if ((void *)(p + 114) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(&in, p + 18, sizeof(in));
	__builtin_memset(&out, 0xa5, sizeof(out));
	if (p[15] != 0xff)
		set = bpf_skb_set_tunnel_key(skb, &in, clamp(p[14]), p[15]);
	p = (void *)(long)skb->data;
	if ((void *)(p + 114) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	if (p[17] != 0xff)
		get = bpf_skb_get_tunnel_key(skb, &out, clamp(p[16]), p[17]);
	p = (void *)(long)skb->data;
	if ((void *)(p + 114) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(p + 62, &set, 4);
	__builtin_memcpy(p + 66, &get, 4);
	__builtin_memcpy(p + 70, &out, sizeof(out));
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
