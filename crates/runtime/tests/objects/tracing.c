/* Tracing programs in the style libbpf tools use (tests/tracing.rs): a kprobe/kretprobe pair
 * counting opens per process and failed opens, a tracepoint counting openat calls by flags, a
 * raw tracepoint counting context switches, and an fentry/fexit pair building a log2 latency
 * histogram. Own declarations (no vmlinux.h, no libbpf headers): struct pt_regs is x86-64's
 * (asm/ptrace.h), the tracepoint record follows the syscalls:sys_enter_openat format.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -c tracing.c -o tracing.o                     */

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
};
#define BPF_ANY 0
#define BPF_NOEXIST 1

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
static long (*bpf_probe_read_user_str)(void *dst, __u32 size, const void *unsafe_ptr) = (void *)114;
static __u64 (*bpf_get_func_ip)(void *ctx) = (void *)173;
static __u64 (*bpf_get_attach_cookie)(void *ctx) = (void *)174;
static long (*bpf_get_func_arg)(void *ctx, __u32 n, __u64 *value) = (void *)183;
static long (*bpf_get_func_ret)(void *ctx, __u64 *value) = (void *)184;
static long (*bpf_get_func_arg_cnt)(void *ctx) = (void *)185;

/* x86-64's struct pt_regs, in asm/ptrace.h's order (the kernel's short names). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};
/* libbpf's x86-64 PT_REGS_* accessors. */
#define PT_REGS_PARM1(x) ((x)->di)
#define PT_REGS_PARM2(x) ((x)->si)
#define PT_REGS_PARM3(x) ((x)->dx)
#define PT_REGS_RC(x) ((x)->ax)

/* syscalls:sys_enter_openat's record (its format file): the common header, the syscall
 * number, then each argument widened to 8 bytes. */
struct trace_event_raw_sys_enter_openat {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	int __syscall_nr;
	__u64 dfd;
	__u64 filename;
	__u64 flags;
	__u64 mode;
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

#define MAX_SLOTS 32

/* Opens per process (tgid), and the last file name each opened. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} opens SEC(".maps");

struct name {
	char comm[16];
	char path[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct name);
} last_open SEC(".maps");

/* [0] failed opens, [1] the last error, [2] the last dfd the kprobe saw. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* openat calls by their flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, __u64);
} open_flags SEC(".maps");

/* Context switches: [0] voluntary, [1] preempted; [2] the last next-task pointer. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} switches SEC(".maps");

/* Entry times of do_unlinkat by thread, and the log2 histogram of its latency in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hist SEC(".maps");

/* What the fexit program learnt from the tracing helpers: [0] function address, [1] argument
 * count, [2] return value (get_func_ret), [3] argument 0 (get_func_arg), [4] cookie, [5]
 * get_func_arg past the last argument, [6] failed unlinks. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} func_info SEC(".maps");

static __always_inline void add(void *map, __u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);
	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void set(void *map, __u32 key, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);
	if (v)
		*v = n;
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* long do_sys_openat2(int dfd, const char __user *filename, struct open_how *how) */
SEC("kprobe/do_sys_openat2")
int trace_openat2(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	int dfd = (int)PT_REGS_PARM1(ctx);
	const char *filename = (const char *)PT_REGS_PARM2(ctx);
	__u64 one = 1, *count;
	struct name n = {};

	count = bpf_map_lookup_elem(&opens, &tgid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&opens, &tgid, &one, BPF_NOEXIST);
	bpf_get_current_comm(n.comm, sizeof(n.comm));
	bpf_probe_read_user_str(n.path, sizeof(n.path), filename);
	bpf_map_update_elem(&last_open, &tgid, &n, BPF_ANY);
	set(&stats, 2, (__u64)(__s64)dfd);
	return 0;
}

SEC("kretprobe/do_sys_openat2")
int trace_openat2_ret(struct pt_regs *ctx)
{
	long ret = PT_REGS_RC(ctx);
	if (ret < 0) {
		add(&stats, 0, 1);
		set(&stats, 1, (__u64)-ret);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tp_enter_openat(struct trace_event_raw_sys_enter_openat *ctx)
{
	__u64 flags = ctx->flags, one = 1, *count;

	count = bpf_map_lookup_elem(&open_flags, &flags);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&open_flags, &flags, &one, BPF_NOEXIST);
	return ctx->__syscall_nr;
}

/* sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next, ...) */
SEC("raw_tracepoint/sched_switch")
int raw_sched_switch(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 preempt = ctx->args[0] ? 1 : 0;
	add(&switches, preempt, 1);
	set(&switches, 2, ctx->args[2]);
	return 0;
}

/* long do_unlinkat(int dfd, struct filename *name) */
SEC("fentry/do_unlinkat")
int unlink_entry(__u64 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &id, &ts, BPF_ANY);
	set(&func_info, 4, bpf_get_attach_cookie(ctx));
	return 0;
}

SEC("fexit/do_unlinkat")
int unlink_exit(__u64 *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), *tsp, delta, v = 0;
	long ret = (long)ctx[2];
	__u32 slot;

	tsp = bpf_map_lookup_elem(&start, &id);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &id);
	slot = log2_u64(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	add(&hist, slot, 1);
	if (ret < 0)
		add(&func_info, 6, 1);

	set(&func_info, 0, bpf_get_func_ip(ctx));
	set(&func_info, 1, bpf_get_func_arg_cnt(ctx));
	if (bpf_get_func_ret(ctx, &v) == 0)
		set(&func_info, 2, v);
	if (bpf_get_func_arg(ctx, 0, &v) == 0)
		set(&func_info, 3, v);
	set(&func_info, 5, bpf_get_func_arg(ctx, 2, &v));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
