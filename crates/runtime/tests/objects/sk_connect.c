/* A cgroup connect4 program looking up sockets (tests/sock_ptr.rs), in the style of local
 * service redirection: a TCP connect to a port some socket of the namespace listens on at the
 * wildcard address goes to 127.0.0.1 instead (bpf_sk_lookup_tcp by the destination, the
 * listener's state read, then released); the connect proceeds (1) either way.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_connect.c -o sk_connect.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static struct bpf_sock *(*bpf_sk_lookup_tcp)(void *ctx, struct bpf_sock_tuple *tuple, __u32 tuple_size, __u64 netns, __u64 flags) = (void *)84;
static long (*bpf_sk_release)(void *sock) = (void *)86;

SEC("cgroup/connect4")
int to_local_listener(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	__u32 state;

	if (ctx->type != 1 /* SOCK_STREAM */)
		return 1;
	tuple.ipv4.daddr = 0;
	tuple.ipv4.dport = ctx->user_port;
	sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 1;
	state = sk->state;
	bpf_sk_release(sk);
	if (state == BPF_TCP_LISTEN)
		ctx->user_ip4 = __builtin_bswap32(0x7f000001);
	return 1;
}

char _license[] SEC("license") = "GPL";
