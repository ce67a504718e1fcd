/* A cgroup connect4 hook whose source of the rewritten address is a register holding the
 * context pointer on one path and a scalar (0) on the other, read only on the path where it
 * is the pointer (tests/path_join.rs). Ports 8080 and 8443 of 10.0.0.0/8 are sent to the
 * backend the `backends` map names for the port; the address is then taken through `src`,
 * which is the context only for those two ports. Every other connection keeps its address
 * and is counted in `passed`. The kernel explores the two paths apart and accepts it; a
 * verifier joining the paths sees a register that may be a pointer or a scalar.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c sock_join.c -o sock_join.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
/* Hides a value from the optimiser, so that the join of its two definitions stays a join. */
#define opaque(v) asm volatile("" : "+r"(v))

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

#define htons(x) __builtin_bswap16(x)
#define htonl(x) __builtin_bswap32(x)

/* Backend address (host order) by service index: 0 for 8080, 1 for 8443. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} backends SEC(".maps");

/* Connections left alone. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} passed SEC(".maps");

SEC("cgroup/connect4")
int connect4_join(struct bpf_sock_addr *ctx)
{
	struct bpf_sock_addr *src = 0;
	__u32 port = ctx->user_port;
	__u32 key = 0;

	if ((ctx->user_ip4 & htonl(0xff000000)) == htonl(0x0a000000)) {
		if (port == htons(8080))
			src = ctx;
		else if (port == htons(8443)) {
			src = ctx;
			key = 1;
		}
	}
	opaque(src);
#ifdef UNSAFE
	/* The unsafe twin (sock_join_bad.c): a read through `src` on the paths where it is 0. */
	if (port != htons(22))
		key = src->user_port & 1;
#endif
	if (src) {
		__u32 *backend = bpf_map_lookup_elem(&backends, &key);

		if (!backend)
			return 0;
		/* The address read through `src`: the context on this path only. */
		src->user_ip4 = htonl(*backend | (htonl(src->user_ip4) & 0xff));
		return 1;
	}
	__u64 *n = bpf_map_lookup_elem(&passed, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}

char _license[] SEC("license") = "GPL";
