/* Socket-option policy for a cgroup, in the style of the programs a container agent attaches
 * with `bpftool cgroup attach <cgroup> setsockopt|getsockopt pinned <prog>`
 * (tests/cgroup_sockopt.rs):
 *
 * - cgroup/setsockopt `so_set`: a private level (0xdeadbeef) is refused (EPERM); SO_SNDBUF
 *   (SOL_SOCKET) is capped at 64 KiB by rewriting the value in place; IP_TOS (SOL_IP) on an
 *   IPv4 socket is answered by the program itself, the value kept in `tos` and the kernel's
 *   handler bypassed (optlen -1); TCP_CONGESTION (IPPROTO_TCP) "bbr" becomes "reno" (and its
 *   optlen 5); a value too short for its option is refused. Every call is counted by level in
 *   `calls`.
 * - cgroup/getsockopt `so_get`: IP_TOS reads back the kept `tos` (one byte, retval 0, though the
 *   kernel's handler knew nothing of it); SO_SNDBUF reads of a failed call are passed on with
 *   their retval; a private level's read fails with -EINVAL (retval), optlen 0;
 *   anything else goes back as the handler made it.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgroup_sockopt.c -o cgroup_sockopt.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;

#define SOL_IP 0
#define SOL_SOCKET 1
#define IPPROTO_TCP 6
#define IP_TOS 1
#define SO_SNDBUF 7
#define TCP_CONGESTION 13
#define SOL_PRIVATE 0xdeadbeef
#define AF_INET 2
#define SNDBUF_MAX 65536

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __s32);
	__type(value, __u64);
} calls SEC(".maps");

static void count(__s32 level)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&calls, &level);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &level, &one, BPF_NOEXIST);
}

SEC("cgroup/setsockopt")
int so_set(struct bpf_sockopt *ctx)
{
	__u8 *optval = ctx->optval, *end = ctx->optval_end;
	__u32 zero = 0;

	count(ctx->level);
	if (ctx->level == (int)SOL_PRIVATE)
		return 0;
	if (ctx->level == SOL_SOCKET && ctx->optname == SO_SNDBUF) {
		if (optval + 4 > end)
			return 0;
		if (*(__s32 *)optval > SNDBUF_MAX)
			*(__s32 *)optval = SNDBUF_MAX;
		return 1;
	}
	if (ctx->level == SOL_IP && ctx->optname == IP_TOS && ctx->sk->family == AF_INET) {
		__u32 *t = bpf_map_lookup_elem(&tos, &zero);

		if (optval + 1 > end)
			return 0;
		if (t)
			*t = optval[0];
		ctx->optlen = -1;
		return 1;
	}
	if (ctx->level == IPPROTO_TCP && ctx->optname == TCP_CONGESTION) {
		if (optval + 5 > end)
			return 1;
		if (optval[0] == 'b' && optval[1] == 'b' && optval[2] == 'r') {
			optval[0] = 'r';
			optval[1] = 'e';
			optval[2] = 'n';
			optval[3] = 'o';
			optval[4] = 0;
			ctx->optlen = 5;
		}
		return 1;
	}
	/* Any other option: the caller's own value. */
	ctx->optlen = 0;
	return 1;
}

SEC("cgroup/getsockopt")
int so_get(struct bpf_sockopt *ctx)
{
	__u8 *optval = ctx->optval, *end = ctx->optval_end;
	__u32 zero = 0;

	count(ctx->level);
	if (ctx->level == SOL_IP && ctx->optname == IP_TOS) {
		__u32 *t = bpf_map_lookup_elem(&tos, &zero);

		if (optval + 1 > end || !t)
			return 1;
		optval[0] = *t;
		ctx->optlen = 1;
		/* Two 4-byte stores: the kernel refuses the 8-byte one clang would merge them into. */
		asm volatile("" ::: "memory");
		ctx->retval = 0;
		return 1;
	}
	if (ctx->level == (int)SOL_PRIVATE) {
		ctx->retval = -22;
		asm volatile("" ::: "memory");
		ctx->optlen = 0;
		return 1;
	}
	/* A failed call goes back as it failed; a success as the kernel's handler made it. */
	return 1;
}

char _license[] SEC("license") = "GPL";
