/* Socket-local storage in the style of per-socket traffic accounting (tests/sk_storage.rs,
 * tests/sk_storage_oracle.rs): a struct sk_stats per socket in a BPF_MAP_TYPE_SK_STORAGE map.
 *
 * - tc `tc_account`: the packet's socket (skb->sk, no sk_fullsock needed) gets its value,
 *   created with first_mark = skb->mark the first time (an initial value); packets and bytes
 *   grow; cb[0..3] = packets, bytes, first_mark. No socket: cb[0] = 0. No value (a socket that
 *   is no full one): cb[0] = 0xffffffff. With cb[3] = 1 the value is deleted afterwards and
 *   cb[4] is what bpf_sk_storage_delete returned.
 * - tc `tc_peek`: the value without creating it, with flags cb[3]: cb[0] = packets, or
 *   0xffffffff for NULL; with cb[3] = 2 (an unknown flag) always NULL. With cb[4] = 1, cb[4]
 *   becomes what bpf_sk_storage_delete returns for the socket.
 * - tc `tc_tag`: the established or listening socket a TCP packet reaches (bpf_skc_lookup_tcp
 *   on its tuple) gets tag = cb[0] in a value created zeroed (no initial value); cb[1] = the
 *   tag stored before (or 0xffffffff when the lookup finds no socket or no value is made).
 * - cgroup_skb/egress `cg_account`: as tc_account, always passing the packet (1).
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sk_storage.c -o sk_storage.o */
#include "sk_storage.h"

static __always_inline void account(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct sk_stats init = { .first_mark = skb->mark };
	struct sk_stats *st;

	skb->cb[0] = 0;
	if (!sk)
		return;
	st = bpf_sk_storage_get(&sk_stats, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		skb->cb[0] = 0xffffffff;
		return;
	}
	st->packets++;
	st->bytes += skb->len;
	skb->cb[0] = st->packets;
	skb->cb[1] = st->bytes;
	skb->cb[2] = st->first_mark;
	if (skb->cb[3] == 1)
		skb->cb[4] = bpf_sk_storage_delete(&sk_stats, sk);
}

SEC("tc")
int tc_account(struct __sk_buff *skb)
{
	account(skb);
	return TC_ACT_OK;
}

SEC("tc")
int tc_peek(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct sk_stats *st;

	if (!sk)
		return TC_ACT_OK;
	st = bpf_sk_storage_get(&sk_stats, sk, 0, skb->cb[3]);
	skb->cb[0] = st ? st->packets : 0xffffffff;
	if (skb->cb[4] == 1)
		skb->cb[4] = bpf_sk_storage_delete(&sk_stats, sk);
	return TC_ACT_OK;
}

SEC("tc")
int tc_tag(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct bpf_sock_tuple t = {};
	struct sk_stats *st;
	struct bpf_sock *sk;
	__u8 *ip = data + 14;

	skb->cb[1] = 0xffffffff;
	if (data + 14 + 24 > end || ip[9] != 6)
		return TC_ACT_OK;
	__builtin_memcpy(&t.ipv4.saddr, ip + 12, 4);
	__builtin_memcpy(&t.ipv4.daddr, ip + 16, 4);
	__builtin_memcpy(&t.ipv4.sport, ip + 20, 2);
	__builtin_memcpy(&t.ipv4.dport, ip + 22, 2);
	sk = bpf_skc_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return TC_ACT_OK;
	st = bpf_sk_storage_get(&sk_stats, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (st) {
		skb->cb[1] = st->tag;
		st->tag = skb->cb[0];
	}
	bpf_sk_release(sk);
	return TC_ACT_OK;
}

SEC("cgroup_skb/egress")
int cg_account(struct __sk_buff *skb)
{
	account(skb);
	return 1;
}

char _license[] SEC("license") = "GPL";
