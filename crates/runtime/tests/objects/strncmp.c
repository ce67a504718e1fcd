/* A TC program matching a packet's payload against constant strings with bpf_strncmp, as
 * programs match HTTP methods or host names: the size to compare is byte 14 of the frame
 * (clamped to 1..16), the string to compare bytes 16..32, against the constant chosen by byte
 * 15 (0 "GET ", 1 "POST", 2 "" , 3 "example.com", 4 "\xffz"). The answer (a little-endian
 * int) is written over bytes 32..36. TC_ACT_OK, or TC_ACT_SHOT for a frame shorter than 36
 * bytes.                                                                                    */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_strncmp)(const char *s1, __u32 s1_sz, const char *s2) = (void *)182;

static const char get[] = "GET ";
static const char post[] = "POST";
static const char empty[] = "";
static const char host[] = "example.com";
static const char high[] = "\xffz";

SEC("tc")
int strncmp_tc(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data;
	char buf[16];
	__u32 n;
	int ret;

	if ((void *)(p + 36) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	__builtin_memcpy(buf, p + 16, sizeof(buf));
	n = p[14];
	if (n < 1)
		n = 1;
	if (n > sizeof(buf))
		n = sizeof(buf);
	switch (p[15]) {
	case 0:
		ret = bpf_strncmp(buf, n, get);
		break;
	case 1:
		ret = bpf_strncmp(buf, n, post);
		break;
	case 2:
		ret = bpf_strncmp(buf, n, empty);
		break;
	case 3:
		ret = bpf_strncmp(buf, n, host);
		break;
	default:
		ret = bpf_strncmp(buf, n, high);
		break;
	}
	__builtin_memcpy(p + 32, &ret, 4);
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
