/* Packet and byte counters per traffic class in a per-CPU array: an XDP program counts every
 * frame in `counts[class]` (0: IPv4, 1: ARP, 2: anything else, 3: too short for Ethernet) on
 * the CPU it runs on, without atomics, as per-CPU maps allow. It also counts, in the shared
 * array `by_cpu`, the frames each CPU number reported by bpf_get_smp_processor_id() saw
 * (atomically), so the two views can be checked against each other; and it reads the IPv4
 * counter of CPU 0 with bpf_map_lookup_percpu_elem() into `cpu0_ipv4` (a global).
 *
 *   bpfx run examples/percpu_count.o --ctx xdp --packet examples/tcp-syn.bin --dump-maps
 *   => XDP_PASS (2); counts: class 0 is [1 packet, 54 bytes] on the running CPU, 0 elsewhere */
#include "bpf_helpers.h"

#define MAX_CPUS 64

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct counter);
} counts SEC(".maps");

__u64 by_cpu[MAX_CPUS];
__u64 cpu0_ipv4;

SEC("xdp")
int xdp_percpu_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 class = 3;

	if ((void *)(eth + 1) <= data_end) {
		__u16 proto = bpf_ntohs(eth->h_proto);
		class = proto == ETH_P_IP ? 0 : proto == ETH_P_ARP ? 1 : 2;
	}
	struct counter *c = bpf_map_lookup_elem(&counts, &class);
	if (!c)
		return XDP_ABORTED;
	c->packets += 1;
	c->bytes += data_end - data;

	__u32 cpu = bpf_get_smp_processor_id();
	__sync_fetch_and_add(&by_cpu[cpu & (MAX_CPUS - 1)], 1);

	__u32 ipv4 = 0;
	struct counter *c0 = bpf_map_lookup_percpu_elem(&counts, &ipv4, 0);
	if (c0)
		cpu0_ipv4 = c0->packets;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
