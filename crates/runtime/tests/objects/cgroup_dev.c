/* A container runtime's device policy for cgroup v2 (tests/cgroup_dev.rs): the allowlist that
 * cgroup v1 kept in devices.allow, as a program attached with
 * `bpftool cgroup attach <cgroup> device pinned <prog>`.
 *
 * - cgroup/dev `dev_allow`: looks the device up in `rules` by kind, major and minor, then by
 *   kind and major with minor ~0 (a wildcard rule, `c 136:* rwm`); the rule's value is the
 *   accesses allowed (BPF_DEVCG_ACC_*). Allows (1) when every access asked for is in the
 *   rule; refuses (0) otherwise and counts the refusal in `denied[kind]`. The null, zero,
 *   full, random and urandom character devices and the tty are always readable and writable
 *   (the default list runtimes hard-code, checked before the map).
 * - cgroup/dev `dev_log`: allows everything, recording the last access (its access_type read
 *   as two 16-bit halves, as compilers emit them) with the current uid in `last`.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgroup_dev.c -o cgroup_dev.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;

struct dev_key {
	__u32 kind;
	__u32 major;
	__u32 minor;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct dev_key);
	__type(value, __u32);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} denied SEC(".maps");

struct last_access {
	__u16 kind;
	__u16 access;
	__u32 major;
	__u32 minor;
	__u32 uid;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_access);
} last SEC(".maps");

static int default_allowed(__u32 kind, __u32 major, __u32 minor)
{
	if (kind != BPF_DEVCG_DEV_CHAR)
		return 0;
	/* /dev/null 1:3, zero 1:5, full 1:7, random 1:8, urandom 1:9; tty 5:0 */
	if (major == 1)
		return minor == 3 || minor == 5 || minor == 7 || minor == 8 || minor == 9;
	return major == 5 && minor == 0;
}

SEC("cgroup/dev")
int dev_allow(struct bpf_cgroup_dev_ctx *ctx)
{
	__u32 kind = ctx->access_type & 0xffff;
	__u32 access = ctx->access_type >> 16;
	struct dev_key key = { kind, ctx->major, ctx->minor };
	__u32 *allowed;

	if (default_allowed(kind, key.major, key.minor) && !(access & BPF_DEVCG_ACC_MKNOD))
		return 1;
	allowed = bpf_map_lookup_elem(&rules, &key);
	if (!allowed) {
		key.minor = ~0u;
		allowed = bpf_map_lookup_elem(&rules, &key);
	}
	if (allowed && (access & ~*allowed) == 0)
		return 1;
	if (kind < 3) {
		__u64 *n = bpf_map_lookup_elem(&denied, &kind);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0;
}

SEC("cgroup/dev")
int dev_log(struct bpf_cgroup_dev_ctx *ctx)
{
	__u32 zero = 0;
	struct last_access *l = bpf_map_lookup_elem(&last, &zero);

	if (l) {
		l->kind = *(volatile __u16 *)&ctx->access_type;
		l->access = *((volatile __u16 *)&ctx->access_type + 1);
		l->major = ctx->major;
		l->minor = ctx->minor;
		l->uid = (__u32)bpf_get_current_uid_gid();
	}
	return 1;
}

char _license[] SEC("license") = "GPL";
