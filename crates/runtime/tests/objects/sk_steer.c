/* Socket pointers in the style of socket-steering TC programs and of port filters
 * (tests/sock_ptr.rs):
 *
 * - tc `steer`: for an IPv4 TCP packet, looks up the socket its tuple reaches with
 *   bpf_skc_lookup_tcp; an established socket keeps it, anything else is released and the
 *   listener of port 4321 on the packet's destination is looked up instead. The socket found
 *   must be listening (or established), is assigned to the packet with bpf_sk_assign and
 *   released. Records in cb[0] the state found (0 when none), in cb[1] the sk_assign result,
 *   in cb[2] the socket's local port, in cb[3] its congestion window (bpf_tcp_sock), and
 *   returns TC_ACT_OK when assigned, TC_ACT_SHOT when a socket could not be assigned, and
 *   TC_ACT_UNSPEC when there was none (or the packet is not IPv4 TCP).
 * - tc `udp_owner`: for an IPv4 UDP packet, bpf_sk_lookup_udp by its tuple (in the namespace
 *   of id cb[0] when cb[0] is not 0xffffffff, else the current one): the mark becomes the
 *   owner's cookie-free identity, its local port << 16 | the remote port it is connected to;
 *   returns 1 when found, 0 otherwise.
 * - xdp `xdp_closed_port`: drops IPv4 TCP packets that reach no socket (bpf_sk_lookup_tcp),
 *   passes the rest.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_steer.c -o sk_steer.o */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static struct bpf_sock *(*bpf_sk_lookup_tcp)(void *ctx, struct bpf_sock_tuple *tuple, __u32 tuple_size, __u64 netns, __u64 flags) = (void *)84;
static struct bpf_sock *(*bpf_sk_lookup_udp)(void *ctx, struct bpf_sock_tuple *tuple, __u32 tuple_size, __u64 netns, __u64 flags) = (void *)85;
static long (*bpf_sk_release)(void *sock) = (void *)86;
static struct bpf_tcp_sock *(*bpf_tcp_sock)(struct bpf_sock *sk) = (void *)96;
static struct bpf_sock *(*bpf_skc_lookup_tcp)(void *ctx, struct bpf_sock_tuple *tuple, __u32 tuple_size, __u64 netns, __u64 flags) = (void *)99;
static long (*bpf_sk_assign)(void *ctx, void *sk, __u64 flags) = (void *)124;

#define LISTEN_PORT 4321

/* The IPv4 header of an Ethernet frame between data and data_end, and its L4 header, if the
 * frame holds them whole and the protocol is `proto`. */
static __attribute__((always_inline)) struct iphdr *ipv4(void *data, void *data_end, __u8 proto, void **l4)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return 0;
	if (ip->ihl != 5 || ip->protocol != proto)
		return 0;
	*l4 = ip + 1;
	return ip;
}

SEC("tc")
int steer(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	struct bpf_tcp_sock *tp;
	struct tcphdr *th;
	struct iphdr *ip;
	long err;

	skb->cb[0] = 0;
	skb->cb[1] = 0;
	ip = ipv4(data, data_end, IPPROTO_TCP, (void **)&th);
	if (!ip || (void *)(th + 1) > data_end)
		return TC_ACT_UNSPEC;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = th->source;
	tuple.ipv4.dport = th->dest;
	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (sk) {
		if (sk->state == BPF_TCP_ESTABLISHED)
			goto assign;
		bpf_sk_release(sk);
	}
	tuple.ipv4.dport = __builtin_bswap16(LISTEN_PORT);
	sk = bpf_skc_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return TC_ACT_UNSPEC;
	if (sk->state != BPF_TCP_LISTEN) {
		skb->cb[0] = sk->state;
		bpf_sk_release(sk);
		return TC_ACT_SHOT;
	}
assign:
	skb->cb[0] = sk->state;
	skb->cb[2] = sk->src_port;
	tp = bpf_tcp_sock(sk);
	if (tp)
		skb->cb[3] = tp->snd_cwnd;
	err = bpf_sk_assign(skb, sk, 0);
	skb->cb[1] = err;
	bpf_sk_release(sk);
	return err ? TC_ACT_SHOT : TC_ACT_OK;
}

SEC("tc")
int udp_owner(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	struct udphdr *uh;
	struct iphdr *ip;
	__u64 netns = skb->cb[0] == 0xffffffff ? BPF_F_CURRENT_NETNS : skb->cb[0];

	ip = ipv4(data, data_end, IPPROTO_UDP, (void **)&uh);
	if (!ip || (void *)(uh + 1) > data_end)
		return 0;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = uh->source;
	tuple.ipv4.dport = uh->dest;
	sk = bpf_sk_lookup_udp(skb, &tuple, sizeof(tuple.ipv4), netns, 0);
	if (!sk)
		return 0;
	skb->mark = sk->src_port << 16 | __builtin_bswap16(sk->dst_port);
	skb->cb[1] = sk->family;
	skb->cb[2] = sk->dst_ip4;
	bpf_sk_release(sk);
	return 1;
}

SEC("xdp")
int xdp_closed_port(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	struct tcphdr *th;
	struct iphdr *ip;

	ip = ipv4(data, data_end, IPPROTO_TCP, (void **)&th);
	if (!ip || (void *)(th + 1) > data_end)
		return XDP_PASS;
	tuple.ipv4.saddr = ip->saddr;
	tuple.ipv4.daddr = ip->daddr;
	tuple.ipv4.sport = th->source;
	tuple.ipv4.dport = th->dest;
	sk = bpf_sk_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return XDP_DROP;
	bpf_sk_release(sk);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
