/* The unsafe twins of xdp_spin.c (tests/spin_lock.rs): each breaks one rule the kernel's
 * verifier keeps while a bpf_spin_lock is held, chosen by CASE:
 * 1: a helper call (bpf_ktime_get_ns) inside the locked region;
 * 2: a return, on the path of a runt frame, with the lock still held;
 * 3: a second lock (another value's) taken while the first is held. */
#include "xdp_spin.h"

static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;

SEC("xdp")
int xdp_spin_bad(struct xdp_md *ctx)
{
	__u32 key = 0;
	struct stats *s = bpf_map_lookup_elem(&proto_stats, &key);
	if (!s)
		return XDP_ABORTED;
#if CASE == 3
	__u32 other = 1;
	struct stats *t = bpf_map_lookup_elem(&proto_stats, &other);
	if (!t)
		return XDP_ABORTED;
#endif
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 len = (__u64)(end - data);
	bpf_spin_lock(&s->lock);
	s->packets++;
	s->bytes += len;
#if CASE == 1
	s->last_len = bpf_ktime_get_ns();
#elif CASE == 2
	if (len < 60)
		return XDP_DROP;
#elif CASE == 3
	bpf_spin_lock(&t->lock);
	t->packets++;
	bpf_spin_unlock(&t->lock);
#endif
	s->last_len += (__u32)len;
	bpf_spin_unlock(&s->lock);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
