/* One program calling bpf_get_socket_cookie (46), of the type CASE picks, for the kernel to
 * load or refuse (tests/sock_cookie.rs): 0 TC, 1 socket filter, 2 XDP. sock_cookie_N.c
 * defines CASE and includes this body. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;

#if CASE == 0
SEC("tc")
int cookie(struct __sk_buff *ctx)
#elif CASE == 1
SEC("socket")
int cookie(struct __sk_buff *ctx)
#else
SEC("xdp")
int cookie(struct xdp_md *ctx)
#endif
{
	return bpf_get_socket_cookie(ctx) != 0;
}

char _license[] SEC("license") = "GPL";
