/* The replay filters built natively (by ../build.rs, clang-19 -O2): the same bodies as fw.c and
 * lb.c (bodies.h) over plain C tables, the ceiling the bench measures bpfx against. The hashes
 * are open-addressing tables with a multiplicative hash; the per-CPU arrays are per-thread.
 * bpfx_replay_init fills the tables from replay.h's entries once, before any run; the bench
 * fills the BPF maps through bpfx_replay_rule/_vip/_backend, so both see the same contents. */
#include "replay.h"

#define RULE_SLOTS 64
#define VIP_SLOTS 16

struct rule_slot {
	u64 key;
	u32 action;
	u32 used;
};

struct vip_slot {
	u64 key;
	struct vip v;
	u32 used;
};

static struct rule_slot rule_table[RULE_SLOTS];
static struct vip_slot vip_table[VIP_SLOTS];
static struct backend backend_table[MAX_BACKENDS];
static __thread struct stat fw_stats[4];
static __thread struct stat lb_stats[MAX_BACKENDS];

static inline u64 key8(const void *key)
{
	u64 k;
	__builtin_memcpy(&k, key, 8);
	return k;
}

static inline u32 slot_of(u64 k, u32 slots)
{
	return (u32)((k * 0x9e3779b97f4a7c15ull) >> 40) & (slots - 1);
}

static const u32 *rule_lookup(const struct rule_key *key)
{
	u64 k = key8(key);
	for (u32 i = slot_of(k, RULE_SLOTS);; i = (i + 1) & (RULE_SLOTS - 1)) {
		if (!rule_table[i].used)
			return 0;
		if (rule_table[i].key == k)
			return &rule_table[i].action;
	}
}

static const struct vip *vip_lookup(const struct vip_key *key)
{
	u64 k = key8(key);
	for (u32 i = slot_of(k, VIP_SLOTS);; i = (i + 1) & (VIP_SLOTS - 1)) {
		if (!vip_table[i].used)
			return 0;
		if (vip_table[i].key == k)
			return &vip_table[i].v;
	}
}

#define RULE_LOOKUP(key) rule_lookup(key)
#define FW_STAT(slot) (*(slot) < 4 ? &fw_stats[*(slot)] : 0)
#define VIP_LOOKUP(key) vip_lookup(key)
#define BACKEND(index) (*(index) < MAX_BACKENDS ? &backend_table[*(index)] : 0)
#define LB_STAT(index) (*(index) < MAX_BACKENDS ? &lb_stats[*(index)] : 0)

#include "bodies.h"

int bpfx_replay_rule(u32 i, struct rule_key *key, u32 *action) { return rule_entry(i, key, action); }
int bpfx_replay_vip(u32 i, struct vip_key *key, struct vip *v) { return vip_entry(i, key, v); }
int bpfx_replay_backend(u32 i, struct backend *b) { return backend_entry(i, b); }

void bpfx_replay_init(void)
{
	struct rule_key rk;
	u32 action;
	for (u32 n = 0; rule_entry(n, &rk, &action); n++) {
		u64 k = key8(&rk);
		u32 i = slot_of(k, RULE_SLOTS);
		while (rule_table[i].used && rule_table[i].key != k)
			i = (i + 1) & (RULE_SLOTS - 1);
		rule_table[i] = (struct rule_slot){ .key = k, .action = action, .used = 1 };
	}
	struct vip_key vk;
	struct vip v;
	for (u32 n = 0; vip_entry(n, &vk, &v); n++) {
		u64 k = key8(&vk);
		u32 i = slot_of(k, VIP_SLOTS);
		while (vip_table[i].used && vip_table[i].key != k)
			i = (i + 1) & (VIP_SLOTS - 1);
		vip_table[i] = (struct vip_slot){ .key = k, .v = v, .used = 1 };
	}
	for (u32 n = 0; backend_entry(n, &backend_table[n]); n++)
		;
}

u32 bpfx_replay_fw(u8 *data, u8 *data_end) { return fw_body(data, data_end); }
u32 bpfx_replay_lb(u8 *data, u8 *data_end) { return lb_body(data, data_end); }
