/* One context access per object (tests/sock_cgroup.rs), on the edge of what the kernel allows
 * socket and perf event programs: sock_access_N.c defines CASE and includes this. Cases 0-8
 * and 14 are refused by the kernel, 9-13 accepted; the kernel is asked for each (bpftool prog
 * load).
 *
 *   for n in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do
 *     clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sock_access_$n.c -o sock_access_$n.o
 *   done */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>

#define SEC(name) __attribute__((section(name), used))
#define VOLATILE_READ(x) (*(volatile typeof(x) *)&(x))

#if CASE == 0 /* connect4: user_family is read-only */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx) { ctx->user_family = 2; return 1; }
#elif CASE == 1 /* connect4: user_ip6 belongs to the IPv6 hooks */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx) { return VOLATILE_READ(ctx->user_ip6[0]) != 0; }
#elif CASE == 2 /* sock_create: src_port belongs to post_bind4/6 */
SEC("cgroup/sock_create") int prog(struct bpf_sock *sk) { return VOLATILE_READ(sk->src_port) != 0; }
#elif CASE == 3 /* post_bind4: mark belongs to sock_create/sock_release */
SEC("cgroup/post_bind4") int prog(struct bpf_sock *sk) { sk->mark = 1; return 1; }
#elif CASE == 4 /* sockops: op is read-only */
SEC("sockops") int prog(struct bpf_sock_ops *skops) { skops->op = 1; return 1; }
#elif CASE == 5 /* sockops: family is read whole only */
SEC("sockops") int prog(struct bpf_sock_ops *skops) { return *(volatile __u16 *)&skops->family; }
#elif CASE == 6 /* perf_event: the sample is read-only */
SEC("perf_event") int prog(struct bpf_perf_event_data *ctx) { ctx->sample_period = 0; return 0; }
#elif CASE == 7 /* connect4: past the struct's end (offset 72) */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx) { return ((volatile __u32 *)ctx)[18] != 0; }
#elif CASE == 8 /* sendmsg6: an 8-byte read of msg_src_ip6 must be 8-aligned (44 is not) */
SEC("cgroup/sendmsg6") int prog(struct bpf_sock_addr *ctx)
{
	__u64 v;
	asm volatile("%0 = *(u64 *)(%1 + 44)" : "=r"(v) : "r"(ctx)); /* clang would split it */
	return v != 0;
}
#elif CASE == 9 /* sendmsg6: ... and at 48 it is */
SEC("cgroup/sendmsg6") int prog(struct bpf_sock_addr *ctx)
{
	__u64 v;
	asm volatile("%0 = *(u64 *)(%1 + 48)" : "=r"(v) : "r"(ctx));
	return v != 0;
}
#elif CASE == 10 /* connect6: 8-byte stores into user_ip6 */
SEC("cgroup/connect6") int prog(struct bpf_sock_addr *ctx) { *(volatile __u64 *)&ctx->user_ip6[2] = 0x0100000000000000ULL; return 1; }
#elif CASE == 11 /* post_bind6: dst_port read as 4 bytes, src_ip6 narrow */
SEC("cgroup/post_bind6") int prog(struct bpf_sock *sk) { return (VOLATILE_READ(*(__u32 *)&sk->dst_port) + *(volatile __u8 *)&sk->src_ip6[3]) & 1; }
#elif CASE == 12 /* sockops: skb_tcp_flags narrow, bytes_acked whole */
SEC("sockops") int prog(struct bpf_sock_ops *skops) { return (*(volatile __u8 *)&skops->skb_tcp_flags + VOLATILE_READ(skops->bytes_acked)) & 1; }
#elif CASE == 13 /* perf_event: a narrow read of addr */
SEC("perf_event") int prog(struct bpf_perf_event_data *ctx) { return *(volatile __u16 *)&ctx->addr; }
#elif CASE == 14 /* connect4: returns 0 or 1 only (here 2) */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx) { return VOLATILE_READ(ctx->user_port) == 0 ? 2 : 1; }
#endif

char _license[] SEC("license") = "GPL";
