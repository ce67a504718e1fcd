/* A TC program logging with bpf_trace_vprintk, as libbpf's bpf_printk does with more than
 * three arguments: the arguments are 13 u64s at bytes 16..120 of the frame, byte 14 is how
 * many bytes of them to pass (data_len, clamped to 104) and byte 15 the format: 0 a format of
 * four conversions, 1 one of twelve, 2 the four-conversion format with a size that leaves out
 * its NUL. The answer (a little-endian int) is written over bytes 120..124, 124..128 or
 * 128..132, one place per format (so that the compiler keeps three calls, each with its
 * format at a known place). TC_ACT_OK, or TC_ACT_SHOT for a frame shorter than 132 bytes. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_trace_vprintk)(const char *fmt, __u32 fmt_size, const void *data,
				 __u32 data_len) = (void *)177;

static const char four[] = "vals %d %u %x %lld\n";
static const char twelve[] = "%d %d %d %d %d %d %d %d %d %d %d %d\n";

SEC("tc")
int tc_vprintk(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data;
	__u64 args[13];
	__u32 len;
	int ret;

	if ((void *)(p + 132) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(args, p + 16, sizeof(args));
	len = p[14];
	if (len > sizeof(args))
		len = sizeof(args);
	if (p[15] == 0) {
		ret = bpf_trace_vprintk(four, sizeof(four), args, len);
		__builtin_memcpy(p + 120, &ret, 4);
	} else if (p[15] == 1) {
		ret = bpf_trace_vprintk(twelve, sizeof(twelve), args, len);
		__builtin_memcpy(p + 124, &ret, 4);
	} else {
		ret = bpf_trace_vprintk(four, sizeof(four) - 1, args, len);
		__builtin_memcpy(p + 128, &ret, 4);
	}
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
