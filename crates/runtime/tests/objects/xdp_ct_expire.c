/* Conntrack cleanup by timers, in the style of a host firewall's connection table: one entry
 * per IPv4 flow (saddr, daddr) in an LRU hash whose value embeds the struct bpf_timer that
 * expires it. A new flow's entry arms its timer for CT_IDLE_NS; each packet of a known flow
 * only records when it was seen. When the timer fires, the callback deletes an entry idle for
 * CT_IDLE_NS or more, and otherwise arms its timer again for the rest of that time, so an
 * active flow stays. A packet whose IPv4 TOS byte is 1 cancels its flow's timer (the entry is
 * then kept until the host deletes it); the callback counts what it did in `ct_stats`
 * ([0] expired, [1] re-armed, [2] callback runs). */
#include <linux/bpf.h>
#include <linux/ip.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_timer_init)(struct bpf_timer *timer, void *map, __u64 flags) = (void *)169;
static long (*bpf_timer_set_callback)(struct bpf_timer *timer, void *callback_fn) = (void *)170;
static long (*bpf_timer_start)(struct bpf_timer *timer, __u64 nsecs, __u64 flags) = (void *)171;
static long (*bpf_timer_cancel)(struct bpf_timer *timer) = (void *)172;

#define CLOCK_MONOTONIC 1
#define CT_IDLE_NS (10ull * 1000000000ull)

struct ct_key {
	__u32 saddr;
	__u32 daddr;
};

struct ct_entry {
	__u64 created;
	__u64 last_seen;
	struct bpf_timer timer;
	__u32 packets;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ct_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} ct_stats SEC(".maps");

static void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&ct_stats, &what);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* The entry's timer fired: forget the flow if it has been idle long enough, else wait for
 * the rest of the idle time. */
static int ct_expire(void *map, struct ct_key *key, struct ct_entry *e)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 idle = now - e->last_seen;
	count(2);
	if (idle >= CT_IDLE_NS) {
		bpf_map_delete_elem(map, key);
		count(0);
	} else {
		bpf_timer_start(&e->timer, CT_IDLE_NS - idle, 0);
		count(1);
	}
	return 0;
}

SEC("xdp")
int xdp_ct_expire(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 14 + sizeof(struct iphdr) > end)
		return XDP_PASS;
	unsigned char *eth = data;
	if (eth[12] != 0x08 || eth[13] != 0x00)
		return XDP_PASS;
	struct iphdr *ip = data + 14;
	struct ct_key key = { .saddr = ip->saddr, .daddr = ip->daddr };
	__u64 now = bpf_ktime_get_ns();
	struct ct_entry *e = bpf_map_lookup_elem(&ct_flows, &key);
	if (!e) {
		struct ct_entry fresh = { .created = now, .last_seen = now };
		if (bpf_map_update_elem(&ct_flows, &key, &fresh, BPF_NOEXIST))
			return XDP_ABORTED;
		e = bpf_map_lookup_elem(&ct_flows, &key);
		if (!e)
			return XDP_ABORTED;
		if (bpf_timer_init(&e->timer, &ct_flows, CLOCK_MONOTONIC) ||
		    bpf_timer_set_callback(&e->timer, ct_expire) ||
		    bpf_timer_start(&e->timer, CT_IDLE_NS, 0))
			return XDP_ABORTED;
	}
	e->last_seen = now;
	e->packets++;
	if (ip->tos == 1)
		bpf_timer_cancel(&e->timer);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
