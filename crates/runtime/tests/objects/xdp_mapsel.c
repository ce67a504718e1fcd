/* An XDP forwarder that picks its maps by a branch, as Suricata's XDP filter picks its CPU or
 * device map (tests/path_join.rs): frames whose destination MAC ends in an odd byte go out
 * through `ports` (a device map), even ones through `port_hash` (a device hash map), each
 * with `bpf_redirect_map` called at one call site through the map the branch chose; before
 * that, the frame's source MAC byte is counted in `small_stats` (arrays of 8-byte values) or
 * `big_stats` (16-byte values) by one `map_lookup_elem` call site, incrementing the first 8
 * bytes of the value (common to both layouts): an array lookup the JIT may inline, but only
 * where one map reaches the call. The maps
 * differ in type or value size, so a verifier joining the paths has nothing left to call the
 * helpers with; the kernel explores each path with its own map and accepts it.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c xdp_mapsel.c -o xdp_mapsel.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
/* Hides a value from the optimiser, so that the join of its two definitions stays a join. */
#define opaque(v) asm volatile("" : "+r"(v))
/* The word of the value incremented: 0, in both layouts. The unsafe twin (xdp_mapsel_bad.c)
 * sets 1, past the end of `small_stats`' 8-byte values. */
#ifndef WORD
#define WORD 0
#endif

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} port_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} small_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64[2]);
} big_stats SEC(".maps");

SEC("xdp")
int xdp_mapsel(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *eth = data;
	void *stats, *tx;
	__u64 *count;
	__u32 key;

	if (data + 14 > data_end)
		return XDP_PASS;
	key = eth[11];
	stats = (eth[5] & 1) ? (void *)&small_stats : (void *)&big_stats;
	opaque(stats);
	count = bpf_map_lookup_elem(stats, &key);
	if (count)
		count[WORD] += 1;
	tx = (eth[5] & 1) ? (void *)&ports : (void *)&port_hash;
	opaque(tx);
	return bpf_redirect_map(tx, eth[5] & 7, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
