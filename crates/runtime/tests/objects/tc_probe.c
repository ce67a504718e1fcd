/* A TC program that calls the four probe-read helpers on addresses no one lent it, and writes
 * what they gave into its frame: for address i (of ADDRS) and helper h (probe_read_user,
 * probe_read_kernel, probe_read_user_str, probe_read_kernel_str, in that order), at byte
 * 16 + (4 * i + h) * 24: the return value of an 8-byte read, the 8 bytes its destination holds
 * after it (0xee before), and the return value of a 0-byte read, little-endian. The addresses
 * are never mapped: NULL, a page below mmap_min_addr, the first non-canonical address, the
 * x86-64 guard hole, the vsyscall page. TC_ACT_OK, or TC_ACT_SHOT for a frame shorter than
 * 496 bytes. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *ptr) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *ptr) = (void *)113;
static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *ptr) = (void *)114;
static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *ptr) = (void *)115;

#define NADDRS 5

static __always_inline void record(struct __sk_buff *skb, __u32 slot, long ret, __u64 dst,
				   long ret0)
{
	__u64 out[3] = { ret, dst, ret0 };

	bpf_skb_store_bytes(skb, 16 + slot * 24, out, sizeof(out), 0);
}

SEC("tc")
int tc_probe(struct __sk_buff *skb)
{
	const __u64 addrs[NADDRS] = {
		0, 0x1000, 0x800000000000ULL, 0xffff800000000000ULL, 0xffffffffff600000ULL,
	};
	__u64 dst;
	long ret, ret0;

	if (skb->len < 496)
		return TC_ACT_SHOT;
#pragma unroll
	for (int i = 0; i < NADDRS; i++) {
		const void *p = (const void *)addrs[i];

		dst = 0xeeeeeeeeeeeeeeeeULL;
		ret = bpf_probe_read_user(&dst, 8, p);
		ret0 = bpf_probe_read_user(&dst, 0, p);
		record(skb, 4 * i, ret, dst, ret0);
		dst = 0xeeeeeeeeeeeeeeeeULL;
		ret = bpf_probe_read_kernel(&dst, 8, p);
		ret0 = bpf_probe_read_kernel(&dst, 0, p);
		record(skb, 4 * i + 1, ret, dst, ret0);
		dst = 0xeeeeeeeeeeeeeeeeULL;
		ret = bpf_probe_read_user_str(&dst, 8, p);
		ret0 = bpf_probe_read_user_str(&dst, 0, p);
		record(skb, 4 * i + 2, ret, dst, ret0);
		dst = 0xeeeeeeeeeeeeeeeeULL;
		ret = bpf_probe_read_kernel_str(&dst, 8, p);
		ret0 = bpf_probe_read_kernel_str(&dst, 0, p);
		record(skb, 4 * i + 3, ret, dst, ret0);
	}
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
