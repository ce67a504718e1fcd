/* bpf_for_each_map_elem (helper 164) in libbpf style, for tests/callbacks.rs. Build: see
 * build.sh. The input is plain memory: struct in { __u32 bump; __u32 stop_at; }. */
#include "defs.h"

static long (*bpf_for_each_map_elem)(void *map, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)164;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} table SEC(".maps");

struct in {
	__u32 bump;
	__u32 stop_at;
};

struct walk {
	__u64 sum;
	__u64 key_sum;
	__u64 bump;
	__u64 stop_at;
};

/* Sums values and keys, adds `bump` to the value of key 3, stops after key `stop_at`. */
static long visit_array(void *map, __u32 *key, __u64 *value, struct walk *w)
{
	w->sum += *value;
	w->key_sum += *key;
	if (*key == 3)
		*value += w->bump;
	return *key == w->stop_at;
}

SEC("bpfx_test")
int sum_array(struct in *in)
{
	struct walk w = {0, 0, in->bump, in->stop_at};
	long n = bpf_for_each_map_elem(&values, visit_array, &w, 0);
	return w.sum * 1000 + w.key_sum * 10 + n;
}

static long visit_hash(void *map, __u64 *key, __u64 *value, struct walk *w)
{
	w->sum += *value;
	w->key_sum += *key;
	if (*key == 3)
		*value += w->bump;
	return 0;
}

SEC("bpfx_test")
int sum_hash(struct in *in)
{
	struct walk w = {0, 0, in->bump, 0};
	long n = bpf_for_each_map_elem(&table, visit_hash, &w, 0);
	return w.sum * 1000 + w.key_sum * 10 + n;
}

static long read_past_key(void *map, __u32 *key, __u64 *value, struct walk *w)
{
	/* The key is 4 bytes: its second word is past key_size. */
	w->sum += key[1];
	return 0;
}

/* Unsafe twin: the callback reads past the key. */
SEC("bpfx_test")
int bad_key_read(struct in *in)
{
	struct walk w = {0, 0, 0, 0};
	bpf_for_each_map_elem(&values, read_past_key, &w, 0);
	return w.sum;
}
