/* The body of helper_types_N.c: one program per build, chosen with CASE (0..7), calling
 * helpers its program type may or may not use, to compare which ones the kernel's verifier and
 * bpfx's accept:
 *   0 tc:     probe_read_kernel, jiffies64, ktime_get_boot_ns, ktime_get_coarse_ns  (offered)
 *   1 tc:     get_current_pid_tgid                                                   (offered)
 *   2 xdp:    skb_load_bytes                                                         (not)
 *   3 socket: set_hash                                                               (not)
 *   4 socket: skb_load_bytes_relative, ktime_get_coarse_ns                           (offered)
 *   5 xdp:    get_current_comm                                                       (offered)
 *   6 tc:     xdp_adjust_head                                                        (not)
 *   7 xdp:    probe_read_user_str, jiffies64                                         (offered)
 *   8 xdp:    fib_lookup                                                             (offered)
 *   9 tc:     fib_lookup                                                             (offered)
 *  10 socket: fib_lookup                                                             (not) */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;
static long (*bpf_xdp_adjust_head)(void *ctx, int delta) = (void *)44;
static long (*bpf_set_hash)(void *skb, __u32 hash) = (void *)48;
static long (*bpf_skb_load_bytes_relative)(const void *skb, __u32 offset, void *to, __u32 len,
					   __u32 start_header) = (void *)68;
static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *ptr) = (void *)114;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *ptr) = (void *)113;
static __u64 (*bpf_jiffies64)(void) = (void *)118;
static __u64 (*bpf_ktime_get_boot_ns)(void) = (void *)125;
static __u64 (*bpf_ktime_get_coarse_ns)(void) = (void *)160;
static long (*bpf_fib_lookup)(void *ctx, struct bpf_fib_lookup *params, int plen,
			      __u32 flags) = (void *)69;

/* A lookup from the stack, as routers make it. */
static __attribute__((always_inline)) int fib(void *ctx)
{
	struct bpf_fib_lookup p;

	__builtin_memset(&p, 0, sizeof(p));
	p.family = 2;
	p.ifindex = 1;
	p.ipv4_dst = 0x0100007f;
	return bpf_fib_lookup(ctx, &p, sizeof(p), 0) & 1;
}

#if CASE == 0
SEC("tc")
int types(struct __sk_buff *skb)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), (void *)0);
	return (v + bpf_jiffies64() + bpf_ktime_get_boot_ns() + bpf_ktime_get_coarse_ns()) & 1;
}
#elif CASE == 1
SEC("tc")
int types(struct __sk_buff *skb)
{
	return bpf_get_current_pid_tgid() & 1;
}
#elif CASE == 2
SEC("xdp")
int types(struct xdp_md *ctx)
{
	__u32 v = 0;

	bpf_skb_load_bytes(ctx, 0, &v, sizeof(v));
	return v & 1;
}
#elif CASE == 3
SEC("socket")
int types(struct __sk_buff *skb)
{
	return bpf_set_hash(skb, 1) & 1;
}
#elif CASE == 4
SEC("socket")
int types(struct __sk_buff *skb)
{
	__u32 v = 0;

	bpf_skb_load_bytes_relative(skb, 0, &v, sizeof(v), BPF_HDR_START_NET);
	return (v + bpf_ktime_get_coarse_ns()) & 1;
}
#elif CASE == 5
SEC("xdp")
int types(struct xdp_md *ctx)
{
	char comm[16];

	bpf_get_current_comm(comm, sizeof(comm));
	return comm[0] & 1;
}
#elif CASE == 6
SEC("tc")
int types(struct __sk_buff *skb)
{
	return bpf_xdp_adjust_head(skb, 4) & 1;
}
#elif CASE == 7
SEC("xdp")
int types(struct xdp_md *ctx)
{
	char s[8];

	bpf_probe_read_user_str(s, sizeof(s), (void *)0);
	return (s[0] + bpf_jiffies64()) & 1;
}
#elif CASE == 8
SEC("xdp")
int types(struct xdp_md *ctx)
{
	return fib(ctx);
}
#elif CASE == 9
SEC("tc")
int types(struct __sk_buff *skb)
{
	return fib(skb);
}
#elif CASE == 10
SEC("socket")
int types(struct __sk_buff *skb)
{
	return fib(skb);
}
#endif

char LICENSE[] SEC("license") = "GPL";
