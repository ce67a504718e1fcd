/* Socket options from sock_ops and cgroup connect programs, in the style of TCP tuning agents
 * (tests/sockopt.rs): a sockops program that, when a connection starts, switches its congestion
 * control to the one a config map names, raises the initial window, clamps the send window and
 * turns Nagle off, then reads the options back into a map; a connect4 hook that marks, prioritises
 * and sets the TOS of the sockets it lets through and records what getsockopt says of the
 * socket; a connect6 hook setting the traffic class; and a sockops program probing the options
 * the kernel refuses (unknown level and name, a short optlen, an unknown algorithm), recording
 * each return code.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sockopt.c -o sockopt.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_setsockopt)(void *bpf_socket, int level, int optname, void *optval, int optlen) = (void *)49;
static long (*bpf_getsockopt)(void *bpf_socket, int level, int optname, void *optval, int optlen) = (void *)57;

#define SOL_SOCKET 1
#define SOL_TCP 6
#define SOL_IP 0
#define SOL_IPV6 41
#define SO_SNDBUF 7
#define SO_RCVBUF 8
#define SO_KEEPALIVE 9
#define SO_PRIORITY 12
#define SO_MARK 36
#define TCP_NODELAY 1
#define TCP_MAXSEG 2
#define TCP_KEEPIDLE 4
#define TCP_KEEPCNT 6
#define TCP_CONGESTION 13
#define IP_TOS 1
#define IPV6_TCLASS 67

struct cc_name {
	char name[16];
};

/* Slot 0: the congestion control algorithm to use. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cc_name);
} cc_config SEC(".maps");

/* What the programs read back, by slot: 0 the algorithm in use (as getsockopt returns it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cc_name);
} cc_seen SEC(".maps");

/* Return codes and values, by slot (tune: 0..9, connect4: 10..15, probe: 16..31). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 32);
	__type(key, __u32);
	__type(value, __s64);
} results SEC(".maps");

static void record(__u32 slot, __s64 v)
{
	bpf_map_update_elem(&results, &slot, &v, BPF_ANY);
}

static long set_int(void *ctx, int level, int name, int v)
{
	return bpf_setsockopt(ctx, level, name, &v, sizeof(v));
}

static int get_int(void *ctx, int level, int name, __u32 slot)
{
	int v = 0;
	long err = bpf_getsockopt(ctx, level, name, &v, sizeof(v));

	record(slot, err ? err : v);
	return v;
}

SEC("sockops")
int tune(struct bpf_sock_ops *skops)
{
	__u32 zero = 0;
	struct cc_name *want, got = {};
	long err;

	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB && skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB)
		return 1;
	want = bpf_map_lookup_elem(&cc_config, &zero);
	if (want && want->name[0]) {
		err = bpf_setsockopt(skops, SOL_TCP, TCP_CONGESTION, want->name, sizeof(want->name));
		record(0, err);
	}
	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		/* Before any data: a bigger initial window. */
		record(1, set_int(skops, SOL_TCP, TCP_BPF_IW, 40));
		record(2, set_int(skops, SOL_TCP, TCP_BPF_SNDCWND_CLAMP, 100));
		/* The program sees the new window through the context. */
		record(3, skops->snd_cwnd);
	}
	record(4, set_int(skops, SOL_TCP, TCP_NODELAY, 1));
	record(5, set_int(skops, SOL_SOCKET, SO_SNDBUF, 1 << 20));
	get_int(skops, SOL_SOCKET, SO_SNDBUF, 6);
	get_int(skops, SOL_TCP, TCP_NODELAY, 7);
	err = bpf_getsockopt(skops, SOL_TCP, TCP_CONGESTION, got.name, sizeof(got.name));
	record(8, err);
	if (!err)
		bpf_map_update_elem(&cc_seen, &zero, &got, BPF_ANY);
	return 1;
}

SEC("cgroup/connect4")
int mark_egress(struct bpf_sock_addr *ctx)
{
	/* Telnet is refused; every other connection is marked, prioritised and gets a TOS. */
	if (ctx->user_port == __builtin_bswap16(23))
		return 0;
	record(10, set_int(ctx, SOL_SOCKET, SO_MARK, 0x1234));
	record(11, set_int(ctx, SOL_SOCKET, SO_PRIORITY, 7));
	record(12, set_int(ctx, SOL_IP, IP_TOS, 0xb8));
	get_int(ctx, SOL_IP, IP_TOS, 13);
	/* IPv6's level on an IPv4 socket. */
	record(14, set_int(ctx, SOL_IPV6, IPV6_TCLASS, 0x20));
	get_int(ctx, SOL_TCP, TCP_MAXSEG, 15);
	return 1;
}

SEC("cgroup/connect6")
int tclass6(struct bpf_sock_addr *ctx)
{
	record(10, set_int(ctx, SOL_IPV6, IPV6_TCLASS, 0x20));
	get_int(ctx, SOL_IPV6, IPV6_TCLASS, 11);
	record(12, set_int(ctx, SOL_IP, IP_TOS, 0x20));
	return 1;
}

SEC("sockops")
int probe(struct bpf_sock_ops *skops)
{
	char bbr[4] = "bbr";
	char big[24] = {};
	short half = 1;

	/* An unknown level, an unknown name, a 2-byte int, a value out of range. */
	record(16, set_int(skops, 99, SO_MARK, 1));
	record(17, set_int(skops, SOL_SOCKET, 9999, 1));
	record(18, bpf_setsockopt(skops, SOL_SOCKET, SO_MARK, &half, sizeof(half)));
	record(19, set_int(skops, SOL_TCP, TCP_KEEPCNT, 1000));
	record(20, set_int(skops, SOL_TCP, TCP_KEEPIDLE, 60));
	get_int(skops, SOL_TCP, TCP_KEEPIDLE, 21);
	/* An algorithm the kernel does not have. */
	record(22, bpf_setsockopt(skops, SOL_TCP, TCP_CONGESTION, bbr, sizeof(bbr)));
	/* The window after data was sent. */
	record(23, set_int(skops, SOL_TCP, TCP_BPF_IW, 10));
	/* getsockopt of a name only setsockopt knows: optval zeroed. */
	big[0] = 'x';
	record(24, bpf_getsockopt(skops, SOL_TCP, TCP_BPF_IW, big, 4));
	record(25, big[0]);
	/* The name into a buffer larger than TCP_CA_NAME_MAX. */
	record(26, bpf_getsockopt(skops, SOL_TCP, TCP_CONGESTION, big, sizeof(big)));
	record(27, big[0] | big[4] << 8 | (__s64)big[23] << 16);
	get_int(skops, SOL_SOCKET, SO_RCVBUF, 28);
	record(29, set_int(skops, SOL_SOCKET, SO_KEEPALIVE, 5));
	get_int(skops, SOL_SOCKET, SO_KEEPALIVE, 30);
	return 1;
}

char _license[] SEC("license") = "GPL";
