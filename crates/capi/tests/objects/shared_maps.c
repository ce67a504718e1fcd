/* Three programs of one object sharing their maps, for the object API of bpfx.h
 * (tests/c/object.c): `count` counts inputs by length in `counts`, reports each input on the
 * ring buffer `events` and tail-calls slot 0 of `jumps`; `stage2` (a tail-call target) counts
 * under key 1000 and returns 7; `total` sums every count `count` and `stage2` left.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c shared_maps.c -o shared_maps.o
 */
#include "bpf_helpers.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jumps SEC(".maps");

struct event {
	__u32 len;
	__u32 first;
};

static __always_inline void bump(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	}
}

SEC("mem")
int count(__u8 *buf, __u64 len)
{
	struct event ev = {.len = len, .first = len ? buf[0] : 0xffffffff};

	bump(len & 15);
	bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
	bpf_tail_call(buf, &jumps, 0);
	return 1;
}

SEC("mem")
int stage2(__u8 *buf, __u64 len)
{
	bump(1000);
	return 7;
}


SEC("mem")
int total(__u8 *buf, __u64 len)
{
	__u64 sum = 0;
	__u32 key;

	for (key = 0; key < 16; key++) {
		__u64 *v = bpf_map_lookup_elem(&counts, &key);
		if (v)
			sum += *v;
	}
	key = 1000;
	__u64 *v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		sum += *v;
	return sum;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
