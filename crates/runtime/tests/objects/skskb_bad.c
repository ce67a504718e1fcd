/* The unsafe twin of skskb.c's `verdict` (tests/sk_skb.rs): it upper-cases the data's first
 * byte without checking that the data holds one, which the kernel and bpfx refuse.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c skskb_bad.c -o skskb_bad.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

SEC("sk_skb/stream_verdict")
int verdict_unchecked(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	if (data[0] == 'x')
		data[0] = 'X';
	return SK_PASS;
}

char _license[] SEC("license") = "GPL";
