/* Per-protocol traffic counters updated under a bpf_spin_lock, as rate limiters and flow
 * tables that keep several fields consistent do: the packet and byte counts of a value change
 * together, never seen half updated, by programs running on several CPUs at once. The verdict
 * is the packet count after this packet (so a test run shows the lock's effect), capped into
 * XDP_PASS's range by returning XDP_PASS unless the map lookup fails. */
#include "xdp_spin.h"

SEC("xdp")
int xdp_spin(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	unsigned char *eth = data;
	__u32 key = 3;
	if (data + 14 <= end) {
		__u16 proto = (__u16)(eth[12] << 8 | eth[13]);
		key = proto == 0x0800 ? 0 : proto == 0x86dd ? 1 : proto == 0x0806 ? 2 : 3;
	}
	struct stats *s = bpf_map_lookup_elem(&proto_stats, &key);
	if (!s)
		return XDP_ABORTED;
	__u64 len = (__u64)(end - data);
	bpf_spin_lock(&s->lock);
	s->packets++;
	s->bytes += len;
	s->last_len = (__u32)len;
	bpf_spin_unlock(&s->lock);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
