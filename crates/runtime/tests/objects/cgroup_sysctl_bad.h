/* The refused twins of cgroup_sysctl.c (tests/cgroup_sysctl.rs), one per object:
 * cgroup_sysctl_bad_N.c defines CASE and includes this file.
 *
 * - CASE 0 `narrow_pos`: a 2-byte store to file_pos (only 4-byte stores are allowed).
 * - CASE 1 `write_write`: writes the write field (read-only).
 * - CASE 2 `verdict_2`: may return 2 (a sysctl program returns 0 or 1).
 * - CASE 3 `cookie`: calls bpf_get_socket_cookie (no socket here). */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;

#if CASE == 0
SEC("cgroup/sysctl")
int narrow_pos(struct bpf_sysctl *ctx)
{
	*(volatile __u16 *)&ctx->file_pos = 0;
	return 1;
}
#elif CASE == 1
SEC("cgroup/sysctl")
int write_write(struct bpf_sysctl *ctx)
{
	ctx->write = 0;
	return 1;
}
#elif CASE == 2
SEC("cgroup/sysctl")
int verdict_2(struct bpf_sysctl *ctx)
{
	return ctx->write ? 2 : 1;
}
#else
SEC("cgroup/sysctl")
int cookie(struct bpf_sysctl *ctx)
{
	return bpf_get_socket_cookie(ctx) != 0;
}
#endif

char _license[] SEC("license") = "GPL";
