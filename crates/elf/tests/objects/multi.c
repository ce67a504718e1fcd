/* Several programs per object and per section, linked with .text subprograms. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";
__u32 VERSION SEC("version") = 0x050a00;

/* Static subprograms: clang calls them through the `.text` section symbol. */
static __noinline __u64 square(__u64 x)
{
	return x * x;
}

static __noinline __u64 sum_squares(__u64 a, __u64 b)
{
	return square(a) + square(b);
}

/* A global subprogram: called through its own symbol, and a program of section .text too. */
__noinline int twice(int x)
{
	return x + x;
}

static int loop_body(__u32 index, void *ctx)
{
	*(__u64 *)ctx += index;
	return 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return (int)sum_squares(ctx->data, ctx->data_end) + twice(2);
}

/* A second program in the same section, calling the first one's sibling. */
SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	return twice(ctx->rx_queue_index) > 4 ? 1 : 2;
}

/* A global function in a program section, called from another function of that section. */
SEC("socket")
__noinline int sock_helper(struct xdp_md *skb)
{
	return skb->ingress_ifindex + 7;
}

SEC("socket")
int sock_main(struct xdp_md *skb)
{
	return sock_helper(skb) + 1;
}

SEC("classifier/foo")
int cls(void *skb)
{
	__u64 total = 0;
	bpf_loop(4, loop_body, &total, 0);
	return (int)square(total);
}
