/* A trace_printk format chosen by a branch between two .rodata strings (tests/
 * strict_helper_offsets.rs): clang joins the two format pointers (and their sizes) before the
 * one call, so the verifier sees the format at a variable offset into .rodata, which the kernel
 * accepts for a plain memory argument. Prints the EtherType's first byte; XDP_DROP for a frame
 * too short for an Ethernet header, XDP_PASS otherwise. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;

SEC("xdp")
int xdp_fmt(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	static const char ipv4[] = "ipv4 %d\n";
	static const char other[] = "other type %d\n";
	const char *fmt;
	__u32 size;

	if (data + 14 > end)
		return XDP_DROP;
	if (data[12] == 0x08 && data[13] == 0) {
		fmt = ipv4;
		size = sizeof(ipv4);
	} else {
		fmt = other;
		size = sizeof(other);
	}
	bpf_trace_printk(fmt, size, data[12]);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
