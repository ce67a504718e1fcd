/* Stack counting in the style of offcputime/profile tools (tests/stackmap.rs): a kprobe takes
 * its stack's id from bpf_get_stackid into a stack trace map and counts hits per (tgid,
 * stack id) in a hash map; failures (negative ids) are counted apart by errno. A second
 * kprobe asks for the user stack, which bpfx cannot give (-EFAULT), and a raw tracepoint
 * asks from a context with no stack. Own declarations (no vmlinux.h, no libbpf headers).
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -c stackmap.c -o stackmap.o                   */

typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_STACK_TRACE = 7,
};
#define BPF_NOEXIST 1
#define BPF_F_USER_STACK (1ULL << 8)
#define BPF_F_REUSE_STACKID (1ULL << 10)
#define PERF_MAX_STACK_DEPTH 127

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_stackid)(void *ctx, void *map, __u64 flags) = (void *)27;

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct key_t {
	__u32 tgid;
	__s32 kern_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
} stackmap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

/* Failed get_stackid calls by -errno. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} errors SEC(".maps");

static void count(void *map, const void *key)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(map, key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

static int record(void *ctx, __u64 flags)
{
	struct key_t key = {};
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.kern_stack_id = bpf_get_stackid(ctx, &stackmap, flags);
	if (key.kern_stack_id < 0) {
		__u32 err = -key.kern_stack_id;
		count(&errors, &err);
		return 1;
	}
	count(&counts, &key);
	return 0;
}

SEC("kprobe/finish_task_switch")
int on_switch(struct pt_regs *ctx)
{
	/* The skip count comes from the first argument register, for the tests. */
	return record(ctx, (ctx->di & 0xff) | BPF_F_REUSE_STACKID);
}

SEC("kprobe/do_user")
int on_user(struct pt_regs *ctx)
{
	return record(ctx, BPF_F_USER_STACK);
}

SEC("raw_tracepoint/sched_switch")
int on_raw(void *ctx)
{
	return record(ctx, 0);
}

char LICENSE[] SEC("license") = "GPL";
