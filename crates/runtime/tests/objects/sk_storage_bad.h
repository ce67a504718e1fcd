/* Socket-storage programs the kernel refuses (tests/sk_storage.rs, tests/sk_storage_oracle.rs),
 * each the unsafe twin of a use in sk_storage.c; each sk_storage_bad_N.c defines CASE and
 * includes this body:
 *   1: skb->sk passed before its NULL check;
 *   2: the storage map passed to bpf_map_lookup_elem;
 *   3: bpf_sk_storage_get on a hash map;
 *   4: the value read before its NULL check;
 *   5: a read past the end of the value;
 *   6: bpf_sk_storage_get from a socket filter (the kernel does not offer it there). */
#include "sk_storage.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct sk_stats);
} by_port SEC(".maps");

#if CASE == 6
SEC("socket")
#else
SEC("tc")
#endif
int bad(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct sk_stats *st;
#if CASE == 1
	st = bpf_sk_storage_get(&sk_stats, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return st ? 1 : 0;
#elif CASE == 2
	int key = 0;

	st = bpf_map_lookup_elem(&sk_stats, &key);
	return st ? st->packets : 0;
#elif CASE == 3
	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&by_port, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return st ? st->packets : 0;
#elif CASE == 4
	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&sk_stats, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return st->packets;
#elif CASE == 5
	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&sk_stats, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return st ? ((volatile __u64 *)st)[3] : 0;
#elif CASE == 6
	if (!sk)
		return 0;
	st = bpf_sk_storage_get(&sk_stats, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return st ? st->packets : 0;
#endif
}

char _license[] SEC("license") = "GPL";
