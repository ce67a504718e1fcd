/* A fragment table in the style of a GTP-U or NAT gateway's reassembly state: the entry's
 * expiry timer is not a member of the map's value type itself but of a struct nested in it
 * (struct frag_val { ...; struct frag_rule { ...; struct bpf_timer timer; } rule; }), where
 * the kernel (Linux 6.10 and later) and bpfx's loader find it: at offset 16, rule's 8 plus
 * its own 8. The results of the timer helpers are written as five little-endian s32 words
 * after the IPv4 header: [0] init (0 for a new entry, -EBUSY for a known one), [1]
 * set_callback (0), [2] start (0), [3] cancel (1: it was armed), [4] the packets the entry
 * counted before. Its unsafe twin xdp_frag_timer_bad.c (BAD defined) passes the nested
 * struct's address, offset 8, as the timer, which both refuse. */
#include <linux/bpf.h>
#include <linux/ip.h>

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
#define FRAG_TIMEOUT_NS (30ull * 1000000000ull)

struct frag_key {
	__u32 saddr;
	__u16 id;
	__u16 pad;
};

struct frag_rule {
	__u32 flags;
	__u32 pad;
	struct bpf_timer timer;
};

struct frag_val {
	__u64 packets;
	struct frag_rule rule;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32);
	__type(key, struct frag_key);
	__type(value, struct frag_val);
} frags SEC(".maps");

/* Expired: the fragments never completed, forget them. */
static int frag_expire(void *map, struct frag_key *key, struct frag_val *val)
{
	bpf_map_delete_elem(map, key);
	return 0;
}

SEC("xdp")
int xdp_frag_timer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 14 + 20 + 20 > end)
		return XDP_PASS;
	unsigned char *eth = data;
	if (eth[12] != 0x08 || eth[13] != 0x00)
		return XDP_PASS;
	struct iphdr *ip = data + 14;
	__s32 *out = data + 34;
	struct frag_key key = { .saddr = ip->saddr, .id = ip->id };
	struct frag_val *v = bpf_map_lookup_elem(&frags, &key);
	if (!v) {
		struct frag_val fresh = {};
		if (bpf_map_update_elem(&frags, &key, &fresh, BPF_NOEXIST))
			return XDP_ABORTED;
		v = bpf_map_lookup_elem(&frags, &key);
		if (!v)
			return XDP_ABORTED;
	}
#ifdef BAD
	struct bpf_timer *t = (struct bpf_timer *)&v->rule;
#else
	struct bpf_timer *t = &v->rule.timer;
#endif
	out[0] = bpf_timer_init(t, &frags, CLOCK_MONOTONIC);
	out[1] = bpf_timer_set_callback(t, frag_expire);
	out[2] = bpf_timer_start(t, FRAG_TIMEOUT_NS, 0);
	out[3] = bpf_timer_cancel(t);
	out[4] = v->packets;
	v->packets++;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
