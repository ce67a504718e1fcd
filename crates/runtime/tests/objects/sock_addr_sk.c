/* Cgroup socket-address programs reading the socket through `bpf_sock_addr.sk`
 * (tests/sock_addr_sk.rs), in the style of connect-time proxies that log the socket a call is
 * made on: a connect4 hook that counts TCP connects by the socket's state and type, sends the
 * socket pointer to the trace pipe, and steers the connect to a local proxy only when the
 * socket is a not yet connected TCP socket; a sendmsg6 hook that refuses datagrams of a socket
 * whose protocol is not UDP. `ctx->sk` is never NULL: neither program checks it, as the kernel
 * allows (its PTR_TO_SOCKET).
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sock_addr_sk.c -o sock_addr_sk.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)6;

#define htons(x) __builtin_bswap16(x)
#define htonl(x) __builtin_bswap32(x)

/* Slot 0: connects seen; 1: the last socket's state; 2: its type; 3: its family; 4: its
 * protocol; 5: connects steered to the proxy. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static void put(__u32 slot, __u64 v)
{
	__u64 *p = bpf_map_lookup_elem(&seen, &slot);
	if (p)
		*p = v;
}

static void bump(__u32 slot)
{
	__u64 *p = bpf_map_lookup_elem(&seen, &slot);
	if (p)
		__sync_fetch_and_add(p, 1);
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	char fmt[] = "connect4 sk %p\n";

	bpf_trace_printk(fmt, sizeof(fmt), sk);
	bump(0);
	put(1, sk->state);
	put(2, sk->type);
	put(3, sk->family);
	put(4, sk->protocol);
	/* A TCP socket that is not connected yet (BPF_TCP_CLOSE) goes to the proxy. */
	if (sk->protocol == 6 && sk->state == BPF_TCP_CLOSE && ctx->user_port == htons(80)) {
		ctx->user_ip4 = htonl(0x7f000001);
		ctx->user_port = htons(15001);
		bump(5);
	}
	return 1;
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return ctx->sk->protocol == 17;
}

char _license[] SEC("license") = "GPL";
