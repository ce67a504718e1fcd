/* Bloom filters with the hash count in map_extra (libbpf style), for tests/maps.rs.
 * Build: see build.sh. The input is plain memory: struct in { __u64 value; }. */
#include "defs.h"

enum { BPF_MAP_TYPE_BLOOM_FILTER = 30 };
#define BPF_F_ZERO_SEED (1U << 6)

static long (*bpf_map_push_elem)(void *map, const void *value, __u64 flags) = (void *)87;
static long (*bpf_map_peek_elem)(void *map, void *value) = (void *)89;

/* Three hash functions per value: the low 4 bits of map_extra. */
struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 1000);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__uint(map_extra, 3);
	__type(value, __u64);
} seen3 SEC(".maps");

/* No map_extra: the kernel's default of five. */
struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 1000);
	__uint(map_flags, BPF_F_ZERO_SEED);
	__type(value, __u64);
} seen5 SEC(".maps");

/* Bits above the low 4: the kernel refuses the map (EINVAL). */
struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 1000);
	__uint(map_extra, 16);
	__type(value, __u64);
} too_many SEC(".maps");

struct in {
	__u64 value;
};

SEC("bpfx_test")
int add3(struct in *in)
{
	__u64 v = in->value;
	return bpf_map_push_elem(&seen3, &v, 0);
}

SEC("bpfx_test")
int test3(struct in *in)
{
	__u64 v = in->value;
	return bpf_map_peek_elem(&seen3, &v);
}

SEC("bpfx_test")
int add5(struct in *in)
{
	__u64 v = in->value;
	return bpf_map_push_elem(&seen5, &v, 0);
}

SEC("bpfx_test")
int add_too_many(struct in *in)
{
	__u64 v = in->value;
	return bpf_map_push_elem(&too_many, &v, 0);
}
