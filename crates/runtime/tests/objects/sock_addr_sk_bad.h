/* Uses of `bpf_sock_addr.sk` the kernel's verifier refuses (tests/sock_addr_sk.rs), one per
 * object: sock_addr_sk_bad_N.c defines CASE and includes this. Linux 6.18 refuses each (bpftool
 * prog load), and bpfx refuses each with the offending instruction.
 *
 *   for n in 0 1 2; do
 *     clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sock_addr_sk_bad_$n.c -o sock_addr_sk_bad_$n.o
 *   done */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

#if CASE == 0 /* sk is read with 8-byte loads only */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx)
{
	__u32 v;
	asm volatile("%0 = *(u32 *)(%1 + 64)" : "=r"(v) : "r"(ctx));
	return v != 0;
}
#elif CASE == 1 /* the socket is read-only */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx) { ctx->sk->mark = 1; return 1; }
#elif CASE == 2 /* sk itself is never written */
SEC("cgroup/connect4") int prog(struct bpf_sock_addr *ctx)
{
	asm volatile("*(u64 *)(%0 + 64) = %0" : : "r"(ctx));
	return 1;
}
#endif

char _license[] SEC("license") = "GPL";
