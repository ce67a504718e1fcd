/* A probe of bpf_fib_lookup for the kernel oracle test: the frame holds the flags (bytes 0..4,
 * little-endian), a selector (byte 4: 1 passes a plen one byte short of the struct) and a
 * struct bpf_fib_lookup (bytes 8..72). The struct is copied to the stack, looked up, and
 * copied back into the frame; the verdict is the helper's return value. Frames shorter than
 * 72 bytes: XDP_ABORTED.                                                                      */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_fib_lookup)(void *ctx, struct bpf_fib_lookup *params, int plen,
			      __u32 flags) = (void *)BPF_FUNC_fib_lookup;

SEC("xdp")
int xdp_fib_probe(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_fib_lookup p;
	__u32 flags;
	long rc;

	if (data + 8 + sizeof(p) > data_end)
		return XDP_ABORTED;
	flags = *(__u32 *)data;
	__builtin_memcpy(&p, data + 8, sizeof(p));
	if (*(unsigned char *)(data + 4) == 1)
		rc = bpf_fib_lookup(ctx, &p, sizeof(p) - 1, flags);
	else
		rc = bpf_fib_lookup(ctx, &p, sizeof(p), flags);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 8 + sizeof(p) > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data + 8, &p, sizeof(p));
	return (int)rc;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
