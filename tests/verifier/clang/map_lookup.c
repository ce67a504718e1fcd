#include "bpf.h"

struct stats {
	__u64 packets;
	__u64 bytes;
	__u32 hist[8];
};

struct {
	__uint(type, 2); /* BPF_MAP_TYPE_ARRAY */
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct stats);
} stats SEC(".maps");

/* A map lookup with a null check, then fields and a bounds-checked histogram bucket of the
 * value. */
SEC("prog")
int map_lookup(const __u32 *mem)
{
	__u32 key = mem[0] & 3;
	struct stats *s = bpf_map_lookup_elem(&stats, &key);
	if (!s)
		return 0;
	s->packets += 1;
	s->bytes += mem[1];
	__u32 bucket = mem[2];
	if (bucket < 8)
		s->hist[bucket] += 1;
	return s->packets;
}
