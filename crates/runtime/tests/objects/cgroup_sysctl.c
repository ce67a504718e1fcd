/* A cgroup's /proc/sys policy, as a container runtime attaches one with
 * `bpftool cgroup attach <cgroup> sysctl pinned <prog>` (tests/cgroup_sysctl.rs):
 *
 * - cgroup/sysctl `sysctl_guard`: every read is allowed and counted in `reads`; writes under
 *   `kernel/` are refused; a write of `tcp_mem` (by its base name) is allowed only when its
 *   three numbers parse with bpf_strtoul and none exceeds `limits[0]`; a write of
 *   `net/core/somaxconn` above 4096 (bpf_strtol) is replaced by "4096"; other writes are
 *   allowed. The last write's file position is reset to 0.
 * - cgroup/sysctl `sysctl_log`: records the current value's first 16 bytes and its length
 *   (bpf_sysctl_get_current_value) in `last`, and allows.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgroup_sysctl.c -o cgroup_sysctl.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_sysctl_get_name)(struct bpf_sysctl *ctx, char *buf, unsigned long buf_len, __u64 flags) = (void *)101;
static long (*bpf_sysctl_get_current_value)(struct bpf_sysctl *ctx, char *buf, unsigned long buf_len) = (void *)102;
static long (*bpf_sysctl_get_new_value)(struct bpf_sysctl *ctx, char *buf, unsigned long buf_len) = (void *)103;
static long (*bpf_sysctl_set_new_value)(struct bpf_sysctl *ctx, const char *buf, unsigned long buf_len) = (void *)104;
static long (*bpf_strtol)(const char *buf, unsigned long buf_len, __u64 flags, long *res) = (void *)105;
static long (*bpf_strtoul)(const char *buf, unsigned long buf_len, __u64 flags, unsigned long *res) = (void *)106;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} reads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} limits SEC(".maps");

struct scratch {
	char buf[48];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct last_value {
	char text[16];
	__s64 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct last_value);
} last SEC(".maps");

static int prefix(const char *s, const char *p, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] != p[i])
			return 0;
	return 1;
}

/* The new value is parsed in a map value: the kernel refuses a helper's read of the stack at a
 * variable offset. Each number is read from at most 16 bytes at an offset below 32. */
static int tcp_mem_ok(struct bpf_sysctl *ctx, __u64 max)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	unsigned long v;
	long off = 0, n;

	if (!s || bpf_sysctl_get_new_value(ctx, s->buf, sizeof(s->buf)) < 0)
		return 0;
#pragma unroll
	for (int i = 0; i < 3; i++) {
		if (off < 0 || off >= 32)
			return 0;
		n = bpf_strtoul(s->buf + (off & 31), 16, 0, &v);
		if (n <= 0 || v > max)
			return 0;
		off += n;
	}
	return 1;
}

SEC("cgroup/sysctl")
int sysctl_guard(struct bpf_sysctl *ctx)
{
	char name[32];
	__u32 zero = 0;
	long r;

	if (!ctx->write) {
		__u64 *n = bpf_map_lookup_elem(&reads, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return 1;
	}
	ctx->file_pos = 0;
	r = bpf_sysctl_get_name(ctx, name, sizeof(name), 0);
	if (r >= 7 && prefix(name, "kernel/", 7))
		return 0;
	r = bpf_sysctl_get_name(ctx, name, sizeof(name), BPF_F_SYSCTL_BASE_NAME);
	if (r == 7 && prefix(name, "tcp_mem", 8)) {
		__u64 *max = bpf_map_lookup_elem(&limits, &zero);
		return max && tcp_mem_ok(ctx, *max);
	}
	if (r == 9 && prefix(name, "somaxconn", 10)) {
		char buf[16] = {};
		long v;

		if (bpf_sysctl_get_new_value(ctx, buf, sizeof(buf)) < 0)
			return 0;
		if (bpf_strtol(buf, sizeof(buf), 10, &v) <= 0)
			return 0;
		if (v > 4096)
			bpf_sysctl_set_new_value(ctx, "4096\n", 5);
	}
	return 1;
}

SEC("cgroup/sysctl")
int sysctl_log(struct bpf_sysctl *ctx)
{
	__u32 zero = 0;
	struct last_value *l = bpf_map_lookup_elem(&last, &zero);

	if (l)
		l->len = bpf_sysctl_get_current_value(ctx, l->text, sizeof(l->text));
	return 1;
}

char _license[] SEC("license") = "GPL";
