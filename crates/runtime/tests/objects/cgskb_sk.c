/* A cgroup_skb program reading the packet's socket (tests/sock_ptr.rs), in the style of
 * per-socket accounting: skb->sk, then bpf_sk_fullsock and bpf_tcp_sock on it.
 *
 * - cgroup_skb/egress `egress_sock`: with no socket, cb[0] = 0 and the packet passes (1).
 *   Otherwise cb[0] = the socket's family, cb[1] = its local port, cb[2] = its remote port
 *   (the network-order field, swapped), cb[3] = its state; for a full socket, the packet's
 *   mark becomes the socket's mark + 1, and for a TCP one cb[4] = its smoothed RTT. A socket
 *   in TIME_WAIT is refused (0), any other passes (1).
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgskb_sk.c -o cgskb_sk.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static struct bpf_sock *(*bpf_sk_fullsock)(struct bpf_sock *sk) = (void *)95;
static struct bpf_tcp_sock *(*bpf_tcp_sock)(struct bpf_sock *sk) = (void *)96;

SEC("cgroup_skb/egress")
int egress_sock(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct bpf_tcp_sock *tp;

	skb->cb[0] = 0;
	if (!sk)
		return 1;
	skb->cb[0] = sk->family;
	skb->cb[1] = sk->src_port;
	skb->cb[2] = __builtin_bswap16(sk->dst_port);
	skb->cb[3] = sk->state;
	if (sk->state == BPF_TCP_TIME_WAIT)
		return 0;
	tp = bpf_tcp_sock(sk);
	if (tp)
		skb->cb[4] = tp->srtt_us;
	sk = bpf_sk_fullsock(sk);
	if (sk)
		skb->mark = sk->mark + 1;
	return 1;
}

char _license[] SEC("license") = "GPL";
