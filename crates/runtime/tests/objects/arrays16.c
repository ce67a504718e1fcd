/* Sixteen arrays of 16M 8-byte values: 128 MiB each, each within the memory limit, 2 GiB
 * together, twice bpfx's default memory limit. `touch_all` names all of them, `touch_first`
 * only the first. Nothing of them may be allocated before a program is prepared to run, and a
 * program whose maps do not fit the limit together allocates none. */
#include "defs.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a0 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a1 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a2 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a3 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a4 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a5 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a6 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a7 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a8 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a9 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a10 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a11 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a12 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a13 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a14 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << 24);
	__type(key, __u32);
	__type(value, __u64);
} a15 SEC(".maps");

SEC("socket")
int touch_all(void *ctx)
{
	__u32 key = 0;
	__u64 sum = 0, *p;
	p = bpf_map_lookup_elem(&a0, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a1, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a2, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a3, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a4, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a5, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a6, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a7, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a8, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a9, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a10, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a11, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a12, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a13, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a14, &key);
	if (p)
		sum += *p;
	p = bpf_map_lookup_elem(&a15, &key);
	if (p)
		sum += *p;
	return sum;
}

SEC("socket")
int touch_first(void *ctx)
{
	__u32 key = 0;
	__u64 *p = bpf_map_lookup_elem(&a0, &key);
	return p ? *p : 0;
}

char LICENSE[] SEC("license") = "GPL";
