/* The refused twins of lwt.c (tests/lwt.rs), one per object: lwt_bad_N.c defines CASE and
 * includes this file.
 *
 * - CASE 0 `in_write`: an lwt_in program writes the packet (only lwt_xmit may).
 * - CASE 1 `classid`: reads tc_classid (no lightweight tunnel program may).
 * - CASE 2 `out_store`: an lwt_out program calls bpf_skb_store_bytes (lwt_xmit's helper). */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len, __u64 flags) = (void *)9;

#if CASE == 0
SEC("lwt_in")
int in_write(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	if (data + 20 > (unsigned char *)(long)skb->data_end)
		return BPF_OK;
	data[8] = 64;
	return BPF_OK;
}
#elif CASE == 1
SEC("lwt_in")
int classid(struct __sk_buff *skb)
{
	return skb->tc_classid ? BPF_DROP : BPF_OK;
}
#else
SEC("lwt_out")
int out_store(struct __sk_buff *skb)
{
	__u8 ttl = 64;

	bpf_skb_store_bytes(skb, 8, &ttl, 1, 0);
	return BPF_OK;
}
#endif

char _license[] SEC("license") = "GPL";
