/* A ring buffer of events: for every packet, an XDP program reserves an event, fills in the
 * packet length, its EtherType and ingress interface, and submits it; frames too short for an
 * Ethernet header are reported with bpf_ringbuf_output instead.
 *
 *   bpfx run examples/ringbuf.o --ctx xdp --packet examples/tcp-syn.bin --dump-maps
 *   => XDP_PASS (2), one record: len 54, proto 0x0800, flags 0, ifindex 0, seq 0          */
#include "bpf_helpers.h"

struct event {
	__u32 len;
	__u16 proto;
	__u16 flags;
	__u32 ifindex;
	__u32 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

__u32 seq;

/* The frame's length. Computed in 64 bits and kept there by an empty asm: stored straight into a
 * __u32, the difference becomes a 32-bit subtraction of packet pointers, which the kernel's
 * verifier (and bpfx's Strict mode) refuse. */
static __always_inline __u64 frame_len(void *data, void *data_end)
{
	__u64 len = (__u64)data_end - (__u64)data;

	asm volatile("" : "+r"(len));
	return len;
}

SEC("xdp")
int xdp_events(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 n = __sync_fetch_and_add(&seq, 1);

	if ((void *)(eth + 1) > data_end) {
		struct event short_ev = {
			.len = frame_len(data, data_end), .flags = 1, .ifindex = ctx->ingress_ifindex, .seq = n
		};
		bpf_ringbuf_output(&events, &short_ev, sizeof(short_ev), 0);
		return XDP_DROP;
	}
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return XDP_ABORTED;
	e->len = frame_len(data, data_end);
	e->proto = bpf_ntohs(eth->h_proto);
	e->flags = 0;
	e->ifindex = ctx->ingress_ifindex;
	e->seq = n;
	bpf_ringbuf_submit(e, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
