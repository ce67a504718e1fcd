/* sk_lookup programs as the kernel's documentation describes them (tests/sk_lookup.rs): a
 * dispatcher that steers connections and datagrams for a range of ports to one socket held in a
 * SOCKMAP, whatever address they were sent to, and passes everything else to the regular lookup.
 *
 * - sk_lookup `dispatch`: for TCP to a local port listed in `ports` (the value is the SOCKMAP
 *   index), selects the socket at that index (NULL: drops); counts selections in stats[0] and
 *   failed assignments in stats[1]; anything else passes on.
 * - sk_lookup `echo_v4`: UDP datagrams over IPv4 from 10.0.0.0/8 to port 7 are steered to the
 *   socket at index 0 with BPF_SK_LOOKUP_F_REPLACE (a failed assignment drops); records the
 *   ingress ifindex, the remote port (2-byte load) and the family's low byte (1-byte load) in
 *   `last`, and after a selection whether ctx->sk reads it (pad: 1 when its local port is 7).
 * - sk_lookup `reset`: keeps a selection made before whose local port is the lookup's, else
 *   clears it (bpf_sk_assign with NULL) and passes, dropping if ctx->sk still reads a socket.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_lookup.c -o sk_lookup.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_sk_release)(void *sk) = (void *)86;
static long (*bpf_sk_assign)(void *ctx, void *sk, __u64 flags) = (void *)124;

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define AF_INET 2

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} redir_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u32);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct last_seen {
	__u32 ifindex;
	__u16 remote_port;
	__u8 family;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_seen);
} last SEC(".maps");

static void count(__u32 i)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &i);
	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("sk_lookup")
int dispatch(struct bpf_sk_lookup *ctx)
{
	__u16 port = ctx->local_port;
	__u32 *index;
	struct bpf_sock *sk;
	long err;

	if (ctx->protocol != IPPROTO_TCP)
		return SK_PASS;
	index = bpf_map_lookup_elem(&ports, &port);
	if (!index)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&redir_map, index);
	if (!sk)
		return SK_DROP;
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	count(err ? 1 : 0);
	return err ? SK_DROP : SK_PASS;
}

SEC("sk_lookup")
int echo_v4(struct bpf_sk_lookup *ctx)
{
	__u32 zero = 0;
	struct last_seen *l = bpf_map_lookup_elem(&last, &zero);
	struct bpf_sock *sk;
	long err;

	if (l) {
		l->ifindex = ctx->ingress_ifindex;
		l->remote_port = *(volatile __u16 *)&ctx->remote_port;
		l->family = *(volatile __u8 *)&ctx->family;
	}
	if (ctx->family != AF_INET || ctx->protocol != IPPROTO_UDP || ctx->local_port != 7)
		return SK_PASS;
	if ((ctx->remote_ip4 & 0xff) != 10)
		return SK_PASS;
	sk = bpf_map_lookup_elem(&redir_map, &zero);
	if (!sk)
		return SK_PASS;
	err = bpf_sk_assign(ctx, sk, BPF_SK_LOOKUP_F_REPLACE);
	bpf_sk_release(sk);
	if (err)
		return SK_DROP;
	/* ctx->sk now reads the selection. */
	if (l && ctx->sk)
		l->pad = ctx->sk->src_port == 7 ? 1 : 2;
	return SK_PASS;
}

SEC("sk_lookup")
int reset(struct bpf_sk_lookup *ctx)
{
	struct bpf_sock *prev = ctx->sk;

	/* Keep a selection that listens on the port asked for. */
	if (prev && prev->src_port == ctx->local_port)
		return SK_PASS;
	bpf_sk_assign(ctx, 0, BPF_SK_LOOKUP_F_REPLACE);
	return ctx->sk ? SK_DROP : SK_PASS;
}

char _license[] SEC("license") = "GPL";
