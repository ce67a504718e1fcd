/* What xdp_ct_timer.c and its unsafe twin xdp_ct_timer_bad.c share: the helpers, and a
 * conntrack table in the style of a host firewall's, an LRU hash whose value embeds the
 * struct bpf_timer that expires the entry. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static long (*bpf_timer_init)(struct bpf_timer *timer, void *map, __u64 flags) = (void *)169;
static long (*bpf_timer_set_callback)(struct bpf_timer *timer, void *callback_fn) = (void *)170;
static long (*bpf_timer_start)(struct bpf_timer *timer, __u64 nsecs, __u64 flags) = (void *)171;
static long (*bpf_timer_cancel)(struct bpf_timer *timer) = (void *)172;

#define CLOCK_MONOTONIC 1
/* Long enough that no entry expires while a test runs. */
#define CT_TIMEOUT_NS (600ull * 1000000000ull)

struct ct_key {
	__u32 saddr;
	__u32 daddr;
};

struct ct_val {
	__u64 packets;
	struct bpf_timer timer;
	__u64 last_len;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, struct ct_key);
	__type(value, struct ct_val);
} ct SEC(".maps");

/* The timer's callback: the entry expired, forget the flow. */
static int ct_expire(void *map, struct ct_key *key, struct ct_val *val)
{
	bpf_map_delete_elem(map, key);
	return 0;
}
