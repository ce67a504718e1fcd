/* A packet-header sampler over a perf event array: for every frame with a full Ethernet
 * header, an XDP program sends the header, the frame length and the CPU it runs on to the
 * host with bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, ...), into the running
 * CPU's buffer. It counts the sends that failed (a full buffer) in `failed`.
 *
 *   bpfx run examples/perf_sample.o --ctx xdp --packet examples/tcp-syn.bin
 *   => XDP_PASS (2); one 20-byte sample in the running CPU's buffer                      */
#include "bpf_helpers.h"

struct sample {
	__u8 eth[14];
	__u16 len;
	__u32 cpu;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

__u64 failed;

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
int xdp_perf_sample(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct sample s;

	if (data + sizeof(s.eth) > data_end)
		return XDP_PASS;
	__builtin_memcpy(s.eth, data, sizeof(s.eth));
	s.len = frame_len(data, data_end);
	s.cpu = bpf_get_smp_processor_id();
	if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &s, sizeof(s)) < 0)
		__sync_fetch_and_add(&failed, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
