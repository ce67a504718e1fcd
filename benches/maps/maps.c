/* The map bench (`benches/maps.rs`): one program per map type and operation, each doing OPS
 * lookups or updates of the u32 keys its input holds (plain-memory programs: r1 = the keys, r2 =
 * their size in bytes), so one run's entry is spread over OPS map operations. Values are u64. */
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_ANY 0

#define OPS 64
#define ENTRIES 4096

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, u64 flags) = (void *)2;

#define MAP(name, kind)                           \
	struct {                                  \
		__uint(type, kind);               \
		__uint(max_entries, ENTRIES);     \
		__type(key, u32);                 \
		__type(value, u64);               \
	} name SEC(".maps")

MAP(hash, BPF_MAP_TYPE_HASH);
MAP(array, BPF_MAP_TYPE_ARRAY);
MAP(percpu_array, BPF_MAP_TYPE_PERCPU_ARRAY);
MAP(lru_hash, BPF_MAP_TYPE_LRU_HASH);

/* The sum of the values found. */
static inline __attribute__((always_inline)) u64 lookups(void *map, const u32 *keys, u64 len)
{
	u64 sum = 0;
	if (len < OPS * sizeof(u32))
		return 0;
	for (int i = 0; i < OPS; i++) {
		u32 key = keys[i];
		u64 *v = bpf_map_lookup_elem(map, &key);
		if (v)
			sum += *v;
	}
	return sum;
}

/* Each key's value becomes three times the key; the number of updates that failed. */
static inline __attribute__((always_inline)) u64 updates(void *map, const u32 *keys, u64 len)
{
	u64 failed = 0;
	if (len < OPS * sizeof(u32))
		return 0;
	for (int i = 0; i < OPS; i++) {
		u32 key = keys[i];
		u64 value = (u64)key * 3;
		if (bpf_map_update_elem(map, &key, &value, BPF_ANY))
			failed++;
	}
	return failed;
}

#define PROGS(name)                                                                        \
	SEC("bench") u64 name##_lookup(const u32 *keys, u64 len) { return lookups(&name, keys, len); } \
	SEC("bench") u64 name##_update(const u32 *keys, u64 len) { return updates(&name, keys, len); }

PROGS(hash)
PROGS(array)
PROGS(percpu_array)
PROGS(lru_hash)

char LICENSE[] SEC("license") = "Dual MIT/GPL";
