/* The refused twins of cgroup_sockopt.c (tests/cgroup_sockopt.rs), one per object:
 * cgroup_sockopt_bad_N.c defines CASE and includes this file.
 *
 * - CASE 0 `get_level`: a getsockopt program writes level (only setsockopt may).
 * - CASE 1 `set_retval`: a setsockopt program reads retval (getsockopt's alone).
 * - CASE 2 `unchecked`: writes optval without checking it against optval_end.
 * - CASE 3 `cookie`: calls bpf_get_socket_cookie (not offered to the type). */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;

#if CASE == 0
SEC("cgroup/getsockopt")
int get_level(struct bpf_sockopt *ctx)
{
	ctx->level = 1;
	return 1;
}
#elif CASE == 1
SEC("cgroup/setsockopt")
int set_retval(struct bpf_sockopt *ctx)
{
	return ctx->retval == 0;
}
#elif CASE == 2
SEC("cgroup/setsockopt")
int unchecked(struct bpf_sockopt *ctx)
{
	*(__u8 *)ctx->optval = 0;
	return 1;
}
#else
SEC("cgroup/getsockopt")
int cookie(struct bpf_sockopt *ctx)
{
	return bpf_get_socket_cookie(ctx) != 0;
}
#endif

char _license[] SEC("license") = "GPL";
