/* One object, two programs: `good` counts its runs in an array bpfx implements; `bad` looks
 * a key up in a reuseport socket array, a map type bpfx does not implement. The object must load, `good`
 * must verify and run, and only `bad` must fail, naming itself, the map and its type. */
#include "defs.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} socks SEC(".maps");

SEC("socket")
int good(void *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&runs, &key);
	if (!n)
		return -1;
	*n += 1;
	return *n + 40;
}

SEC("socket")
int bad(void *ctx)
{
	__u32 key = 0;
	return bpf_map_lookup_elem(&socks, &key) != 0;
}

char LICENSE[] SEC("license") = "GPL";
