/* TC programs with socket pointers the kernel refuses (tests/sock_ptr.rs), each the unsafe
 * twin of a use in sk_steer.c; each sk_bad_N.c defines CASE and includes this body:
 *   1: a lookup's socket not released on the path that finds it listening;
 *   2: a field read before the lookup's result is checked against NULL;
 *   3: a field read after bpf_sk_release;
 *   4: a read past the end of struct bpf_sock (offset 80). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static struct bpf_sock *(*bpf_sk_lookup_tcp)(void *ctx, struct bpf_sock_tuple *tuple, __u32 tuple_size, __u64 netns, __u64 flags) = (void *)84;
static long (*bpf_sk_release)(void *sock) = (void *)86;

SEC("tc")
int bad(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_sock *sk;
	long r;

	tuple.ipv4.saddr = skb->cb[0];
	tuple.ipv4.dport = skb->cb[1];
	sk = bpf_sk_lookup_tcp(skb, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
#if CASE == 1
	if (!sk)
		return TC_ACT_OK;
	if (sk->state == BPF_TCP_LISTEN)
		return TC_ACT_SHOT;
	bpf_sk_release(sk);
	return TC_ACT_OK;
#elif CASE == 2
	r = sk->state;
	if (sk)
		bpf_sk_release(sk);
	return r;
#elif CASE == 3
	if (!sk)
		return TC_ACT_OK;
	bpf_sk_release(sk);
	return sk->state;
#elif CASE == 4
	if (!sk)
		return TC_ACT_OK;
	r = ((volatile __u32 *)sk)[20];
	bpf_sk_release(sk);
	return r;
#endif
}

char _license[] SEC("license") = "GPL";
