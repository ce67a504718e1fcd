/* bpf_redirect_peer from an XDP program: the kernel offers the helper to TC programs only, so it
 * refuses this object at load, and so does bpfx (tests/tc_redirect.rs).                            */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)155;

SEC("xdp")
int xdp_peer(struct xdp_md *ctx)
{
	return (int)bpf_redirect_peer(9, 0);
}

char _license[] SEC("license") = "GPL";
