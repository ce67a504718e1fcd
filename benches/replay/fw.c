/* The replay bench's firewall (replay.h, fw_body): parse Ethernet (one VLAN tag), IPv4 and the
 * TCP/UDP ports, look the flow up in a HASH of rules, count verdicts per CPU. */
#include "replay.h"
#include "bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct rule_key);
	__type(value, u32);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, struct stat);
} stats SEC(".maps");

#define RULE_LOOKUP(key) ((const u32 *)bpf_map_lookup_elem(&rules, key))
#define FW_STAT(slot) ((struct stat *)bpf_map_lookup_elem(&stats, slot))

#include "bodies.h"

SEC("xdp")
int fw(struct xdp_md *ctx)
{
	return fw_body((void *)(long)ctx->data, (void *)(long)ctx->data_end);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
