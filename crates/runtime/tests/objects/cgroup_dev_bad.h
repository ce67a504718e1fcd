/* The refused twins of cgroup_dev.c (tests/cgroup_dev.rs), one per object: cgroup_dev_bad_N.c
 * defines CASE and includes this file.
 *
 * - CASE 0 `narrow_major`: a 2-byte load of major (only access_type takes narrow loads).
 * - CASE 1 `write_minor`: writes minor (the context is read-only).
 * - CASE 2 `verdict_2`: may return 2 (a device program returns 0 or 1).
 * - CASE 3 `cookie`: calls bpf_get_socket_cookie (no socket here). */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;

#if CASE == 0
SEC("cgroup/dev")
int narrow_major(struct bpf_cgroup_dev_ctx *ctx)
{
	return *(volatile __u16 *)&ctx->major == 1;
}
#elif CASE == 1
SEC("cgroup/dev")
int write_minor(struct bpf_cgroup_dev_ctx *ctx)
{
	ctx->minor = 0;
	return 1;
}
#elif CASE == 2
SEC("cgroup/dev")
int verdict_2(struct bpf_cgroup_dev_ctx *ctx)
{
	return ctx->major == 1 ? 2 : 1;
}
#else
SEC("cgroup/dev")
int cookie(struct bpf_cgroup_dev_ctx *ctx)
{
	return bpf_get_socket_cookie(ctx) != 0;
}
#endif

char _license[] SEC("license") = "GPL";
