/* sk_msg programs in the style of a service mesh's socket acceleration (merbridge, istio's
 * ambient redirect; tests/sk_msg.rs): a sockops program puts each local connection into a
 * socket hash keyed by its 4-tuple, and the sk_msg verdict hands every message a socket sends
 * straight to its peer's receive queue, looked up by the reversed tuple.
 *
 * - sockops `established`: when an IPv4 connection is established (either side), stores its socket
 *   under (local IPv4, remote IPv4, local port in network order, remote port as a number),
 *   BPF_NOEXIST.
 * - sk_msg `redir`: the peer's key is (remote IPv4, local IPv4, remote port as the field holds
 *   it in its upper 2 bytes, local port as a number): the peer stored its own socket under its
 *   local address first. Redirects to the peer's ingress when the hash holds it (stats[0]),
 *   else passes the message on (stats[1]).
 * - sk_msg `frame`: corks until 4 bytes are there; drops a message starting "DROP"; prefixes
 *   the message with its length (4 bytes, big-endian) pushed in front of it, truncates what
 *   follows past 64 bytes, applies the verdict to the message's bytes and passes it.
 * - sk_msg `by_slot`: redirects (egress) to the socket at index (first byte - '0') of the
 *   `slots` map, reading the first byte after pulling it into the window.
 * - sk_msg `by_sock`: reads the message's socket through `msg->sk` (never NULL for sk_msg, so no
 *   check): records its local port and state in stats[0] and its protocol and type in stats[1],
 *   and passes the message only when the socket is an established TCP socket whose local port
 *   is the one `msg->local_port` gives.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c skmsg.c -o skmsg.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_msg_redirect_map)(struct sk_msg_md *msg, void *map, __u32 key, __u64 flags) = (void *)60;
static long (*bpf_msg_apply_bytes)(struct sk_msg_md *msg, __u32 bytes) = (void *)61;
static long (*bpf_msg_cork_bytes)(struct sk_msg_md *msg, __u32 bytes) = (void *)62;
static long (*bpf_msg_pull_data)(struct sk_msg_md *msg, __u32 start, __u32 end, __u64 flags) = (void *)63;
static long (*bpf_msg_redirect_hash)(struct sk_msg_md *msg, void *map, void *key, __u64 flags) = (void *)71;
static long (*bpf_msg_push_data)(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags) = (void *)90;
static long (*bpf_msg_pop_data)(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags) = (void *)91;
static long (*bpf_sock_hash_update)(struct bpf_sock_ops *skops, void *map, void *key, __u64 flags) = (void *)70;

struct pair {
	__u32 sip;
	__u32 dip;
	__u16 sport;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65535);
	__type(key, struct pair);
	__type(value, __u32);
} sock_pair_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("sockops")
int established(struct bpf_sock_ops *skops)
{
	struct pair p;
	__u32 rport;

	if (skops->family != 2)
		return 0;
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
	    skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 0;
	rport = skops->remote_port >> 16;
	p.sip = skops->local_ip4;
	p.dip = skops->remote_ip4;
	p.sport = __builtin_bswap16(skops->local_port);
	p.dport = __builtin_bswap16(rport);
	bpf_sock_hash_update(skops, &sock_pair_map, &p, BPF_NOEXIST);
	return 0;
}

SEC("sk_msg")
int redir(struct sk_msg_md *msg)
{
	struct pair p = {
		.sip = msg->remote_ip4,
		.dip = msg->local_ip4,
		.sport = msg->remote_port >> 16,
		.dport = msg->local_port,
	};

	if (msg->family != 2)
		return SK_PASS;
	if (bpf_msg_redirect_hash(msg, &sock_pair_map, &p, BPF_F_INGRESS) == SK_PASS) {
		count(0);
		return SK_PASS;
	}
	count(1);
	return SK_PASS;
}

SEC("sk_msg")
int frame(struct sk_msg_md *msg)
{
	__u32 size = msg->size;
	unsigned char *data, *end;

	if (size < 4) {
		bpf_msg_cork_bytes(msg, 4);
		return SK_PASS;
	}
	if (bpf_msg_pull_data(msg, 0, 4, 0))
		return SK_DROP;
	data = (void *)(long)msg->data;
	end = (void *)(long)msg->data_end;
	if (data + 4 > end)
		return SK_DROP;
	if (data[0] == 'D' && data[1] == 'R' && data[2] == 'O' && data[3] == 'P')
		return SK_DROP;
	if (bpf_msg_push_data(msg, 0, 4, 0))
		return SK_DROP;
	/* The pushed bytes are the first element now: the window covers them. */
	data = (void *)(long)msg->data;
	end = (void *)(long)msg->data_end;
	if (data + 4 > end)
		return SK_DROP;
	data[0] = size >> 24;
	data[1] = size >> 16;
	data[2] = size >> 8;
	data[3] = size;
	if (msg->size > 64 && bpf_msg_pop_data(msg, 64, msg->size - 64, 0))
		return SK_DROP;
	bpf_msg_apply_bytes(msg, msg->size);
	return SK_PASS;
}

SEC("sk_msg")
int by_slot(struct sk_msg_md *msg)
{
	unsigned char *data, *end;

	if (bpf_msg_pull_data(msg, 0, 1, 0))
		return SK_DROP;
	data = (void *)(long)msg->data;
	end = (void *)(long)msg->data_end;
	if (data + 1 > end)
		return SK_DROP;
	return bpf_msg_redirect_map(msg, &slots, data[0] - '0', 0);
}

char _license[] SEC("license") = "GPL";

SEC("sk_msg")
int by_sock(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;
	__u32 slot = 0;
	__u64 *n = bpf_map_lookup_elem(&stats, &slot);

	if (n)
		*n = sk->src_port | (__u64)sk->state << 32;
	slot = 1;
	n = bpf_map_lookup_elem(&stats, &slot);
	if (n)
		*n = sk->protocol | (__u64)sk->type << 32;
	if (sk->state != BPF_TCP_ESTABLISHED || sk->protocol != 6)
		return SK_DROP;
	return sk->src_port == msg->local_port ? SK_PASS : SK_DROP;
}
