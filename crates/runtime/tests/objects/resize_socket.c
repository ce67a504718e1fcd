/* A socket filter calling skb_change_tail, which only TC programs may use: the kernel's
 * verifier and bpfx's both refuse it, naming the helper. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_change_tail)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)38;

SEC("socket")
int resize(struct __sk_buff *skb)
{
	return bpf_skb_change_tail(skb, 60, 0) ? 0 : 60;
}

char _license[] SEC("license") = "GPL";
