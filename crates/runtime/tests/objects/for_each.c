/* bpf_for_each_map_elem (helper 164) in libbpf style, for tests/callbacks.rs. Build: see
 * build.sh. The input is plain memory: struct in { __u32 bump; __u32 stop_at; }. */
#include "defs.h"

#define __array(name, val) typeof(val) *name[]

/* The other types the kernel's for_each_map_elem takes or refuses (linux/bpf.h). */
enum {
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_PERCPU_HASH = 10,
	BPF_MAP_TYPE_LPM_TRIE = 11,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
};
#define BPF_F_NO_PREALLOC 1

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

/* Per-CPU maps: the callback sees the value of the CPU the program runs on. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} cpu_values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 32);
	__type(key, __u64);
	__type(value, __u64);
} cpu_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 32);
	__type(key, __u64);
	__type(value, __u64);
} lru_cpu_table SEC(".maps");

SEC("bpfx_test")
int sum_percpu_array(struct in *in)
{
	struct walk w = {0, 0, in->bump, in->stop_at};
	long n = bpf_for_each_map_elem(&cpu_values, visit_array, &w, 0);
	return w.sum * 1000 + w.key_sum * 10 + n;
}

SEC("bpfx_test")
int sum_percpu_hash(struct in *in)
{
	struct walk w = {0, 0, in->bump, 0};
	long n = bpf_for_each_map_elem(&cpu_table, visit_hash, &w, 0);
	return w.sum * 1000 + w.key_sum * 10 + n;
}

SEC("bpfx_test")
int sum_lru_percpu_hash(struct in *in)
{
	struct walk w = {0, 0, in->bump, 0};
	long n = bpf_for_each_map_elem(&lru_cpu_table, visit_hash, &w, 0);
	return w.sum * 1000 + w.key_sum * 10 + n;
}

/* Types the kernel does not iterate: its verifier refuses these programs. */
struct ipv4_prefix {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ipv4_prefix);
	__type(value, __u64);
} prefixes SEC(".maps");

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer SEC(".maps");

static long count_elem(void *map, void *key, void *value, struct walk *w)
{
	w->sum++;
	return 0;
}

SEC("bpfx_test")
int walk_trie(struct in *in)
{
	struct walk w = {0, 0, 0, 0};
	bpf_for_each_map_elem(&prefixes, count_elem, &w, 0);
	return w.sum;
}

SEC("bpfx_test")
int walk_outer(struct in *in)
{
	struct walk w = {0, 0, 0, 0};
	bpf_for_each_map_elem(&outer, count_elem, &w, 0);
	return w.sum;
}
