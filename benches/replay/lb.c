/* The replay bench's load balancer (replay.h, lb_body): services in a HASH, backends in an
 * ARRAY, the frame rewritten towards the chosen backend and sent back out, counters per CPU. */
#include "replay.h"
#include "bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct vip_key);
	__type(value, struct vip);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, u32);
	__type(value, struct backend);
} backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, u32);
	__type(value, struct stat);
} lb_stats SEC(".maps");

#define VIP_LOOKUP(key) ((const struct vip *)bpf_map_lookup_elem(&vips, key))
#define BACKEND(index) ((const struct backend *)bpf_map_lookup_elem(&backends, index))
#define LB_STAT(index) ((struct stat *)bpf_map_lookup_elem(&lb_stats, index))

#include "bodies.h"

SEC("xdp")
int lb(struct xdp_md *ctx)
{
	return lb_body((void *)(long)ctx->data, (void *)(long)ctx->data_end);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
