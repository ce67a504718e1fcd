/* Cgroup socket programs in the style of service-mesh and policy agents (tests/sock_cgroup.rs):
 * a connect4 hook sending a virtual service address to its backend (and refusing telnet), a
 * connect6 hook doing the same for an IPv6 service, a sendmsg4 hook pinning the source address
 * of DNS queries, a sock_create hook marking UDP sockets and refusing raw ones, a post_bind4
 * hook refusing privileged ports other than 53, a sockops program counting TCP events by op,
 * asking for RTT and state callbacks once a connection is established and answering the SYN
 * timeout, and a perf_event program counting samples by instruction address.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sock_cgroup.c -o sock_cgroup.o */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;
static long (*bpf_perf_prog_read_value)(struct bpf_perf_event_data *ctx, struct bpf_perf_event_value *buf, __u32 size) = (void *)56;
static long (*bpf_sock_ops_cb_flags_set)(struct bpf_sock_ops *skops, int flags) = (void *)59;
static __u64 (*bpf_get_netns_cookie)(void *ctx) = (void *)122;

#define htons(x) __builtin_bswap16(x)
#define htonl(x) __builtin_bswap32(x)
#define ntohl(x) __builtin_bswap32(x)

/* Connections redirected, by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} redirected SEC(".maps");

/* TCP events by op, and the last network namespace cookie seen. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} ops SEC(".maps");

/* perf_event samples by instruction address; slot 0 of `periods` the sum of the periods, slot 1
 * the counter read with bpf_perf_prog_read_value, slot 2 its running time. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} periods SEC(".maps");

static void count(void *map, const void *key)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(map, key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_ANY);
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->user_port == htons(23))
		return 0;
	/* The service 10.96.0.10:80 is backend 192.168.1.20:8080. */
	if (ctx->user_ip4 == htonl(0x0a60000a) && ctx->user_port == htons(80) &&
	    ctx->protocol == 6) {
		__u64 cookie = bpf_get_socket_cookie(ctx);
		ctx->user_ip4 = htonl(0xc0a80114);
		ctx->user_port = htons(8080);
		count(&redirected, &cookie);
	}
	return 1;
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	/* The service fd00::10 (any port) is backend fd00::20, port kept. */
	if (ctx->user_ip6[0] == htonl(0xfd000000) && ctx->user_ip6[1] == 0 &&
	    ctx->user_ip6[2] == 0 && ctx->user_ip6[3] == htonl(0x10))
		ctx->user_ip6[3] = htonl(0x20);
	return 1;
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	/* DNS queries leave from 10.0.0.53. */
	if (ctx->type == 2 && ctx->user_port == htons(53))
		ctx->msg_src_ip4 = htonl(0x0a000035);
	return 1;
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	if (sk->type == 3) /* SOCK_RAW */
		return 0;
	if (sk->protocol == 17) { /* IPPROTO_UDP */
		sk->mark = 0x77;
		sk->priority = 6;
	}
	return 1;
}

SEC("cgroup/post_bind4")
int post_bind4(struct bpf_sock *sk)
{
	/* Only port 53 below 1024, and only on 127.0.0.1. */
	if (sk->src_port >= 1024)
		return 1;
	return sk->src_port == 53 && sk->src_ip4 == htonl(0x7f000001);
}

SEC("sockops")
int tcp_events(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op, key = op & 15, ns = 15;
	__u64 netns = bpf_get_netns_cookie(skops);
	int rv = 0;

	count(&ops, &key);
	bpf_map_update_elem(&ops, &ns, &netns, BPF_ANY);
	switch (op) {
	case BPF_SOCK_OPS_TIMEOUT_INIT:
		/* A 1-second SYN timeout towards port 443 (in jiffies at HZ=250). */
		rv = ntohl(skops->remote_port) == 443 ? 250 : -1;
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		rv = bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
						       BPF_SOCK_OPS_RTT_CB_FLAG |
						       BPF_SOCK_OPS_STATE_CB_FLAG);
		/* What the callback flags read now. */
		skops->sk_txhash = skops->bpf_sock_ops_cb_flags;
		break;
	}
	skops->reply = rv;
	return 1;
}

SEC("perf_event")
int perf_sample(struct bpf_perf_event_data *ctx)
{
	__u64 ip = ctx->regs.rip; /* asm/ptrace.h's user-space name of ip */
	__u32 k0 = 0, k1 = 1, k2 = 2;
	struct bpf_perf_event_value v;
	__u64 *sum = bpf_map_lookup_elem(&periods, &k0);

	count(&samples, &ip);
	if (sum)
		*sum += ctx->sample_period;
	if (bpf_perf_prog_read_value(ctx, &v, sizeof(v)) == 0) {
		bpf_map_update_elem(&periods, &k1, &v.counter, BPF_ANY);
		bpf_map_update_elem(&periods, &k2, &v.running, BPF_ANY);
	}
	return 0;
}

char _license[] SEC("license") = "GPL";
