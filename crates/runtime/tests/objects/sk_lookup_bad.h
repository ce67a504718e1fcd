/* The refused twins of sk_lookup.c (tests/sk_lookup.rs), one per object: sk_lookup_bad_N.c
 * defines CASE and includes this file.
 *
 * - CASE 0 `rewrite_port`: rewrites the lookup's local port (the context is read-only).
 * - CASE 1 `verdict_two`: returns 2 for datagrams (sk_lookup programs return SK_DROP or SK_PASS).
 * - CASE 2 `leak`: assigns the socket a SOCKMAP lookup gave and never releases it. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_sk_assign)(void *ctx, void *sk, __u64 flags) = (void *)124;

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} redir_map SEC(".maps");

#if CASE == 0
SEC("sk_lookup")
int rewrite_port(struct bpf_sk_lookup *ctx)
{
	if (ctx->local_port == 8080)
		ctx->local_port = 80;
	return SK_PASS;
}
#elif CASE == 1
SEC("sk_lookup")
int verdict_two(struct bpf_sk_lookup *ctx)
{
	return ctx->protocol == 17 ? 2 : SK_PASS;
}
#else
SEC("sk_lookup")
int leak(struct bpf_sk_lookup *ctx)
{
	__u32 zero = 0;
	struct bpf_sock *sk = bpf_map_lookup_elem(&redir_map, &zero);

	if (!sk)
		return SK_PASS;
	return bpf_sk_assign(ctx, sk, 0) ? SK_DROP : SK_PASS;
}
#endif

char _license[] SEC("license") = "GPL";
