/* The packet's socket in a socket filter and an sk_skb verdict program (tests/sock_ptr.rs):
 *
 * - socket `ipv6_sockets_only`: keeps the whole packet when its socket is an IPv6 one whose
 *   local port is 443, nothing otherwise (no socket included);
 * - sk_skb/stream_verdict `established_only`: passes (SK_PASS) what an established socket
 *   receives, drops the rest.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_filter_sock.c -o sk_filter_sock.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

SEC("socket")
int ipv6_sockets_only(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (!sk || sk->family != 10 /* AF_INET6 */ || sk->src_port != 443)
		return 0;
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int established_only(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;

	if (sk && sk->state == BPF_TCP_ESTABLISHED)
		return SK_PASS;
	return SK_DROP;
}

char _license[] SEC("license") = "GPL";
