/* bpf_get_socket_cookie (46) from TC and socket-filter programs, and refused to XDP as the
 * kernel refuses it; a perf event array declared with its type only, as bpf2go objects
 * commonly declare it (the loader gives it 4-byte keys and values), and one declared with an
 * 8-byte value, which stays refused. tests/sock_cookie.rs. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]

static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;
static long (*bpf_perf_event_output)(void *ctx, void *map, __u64 flags, void *data,
				     __u64 size) = (void *)25;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
} cookies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, 4);
	__uint(value_size, 8);
} wide SEC(".maps");

/* Sends the packet's socket cookie and its length; passes (0) a packet without a socket. */
SEC("tc")
int tc_cookie(struct __sk_buff *skb)
{
	__u64 rec[2] = {bpf_get_socket_cookie(skb), skb->len};

	if (bpf_perf_event_output(skb, &cookies, BPF_F_CURRENT_CPU, rec, sizeof(rec)))
		return 2;
	return rec[0] == 0 ? 0 : 2;
}

/* Keeps the whole packet when it has no socket, else nothing. */
SEC("socket")
int sock_cookie(struct __sk_buff *skb)
{
	return bpf_get_socket_cookie(skb) == 0 ? skb->len : 0;
}

SEC("xdp")
int xdp_cookie(struct xdp_md *ctx)
{
	return bpf_get_socket_cookie(ctx) == 0 ? 2 : 1;
}

SEC("tc")
int tc_wide(struct __sk_buff *skb)
{
	__u64 v = skb->len;

	bpf_perf_event_output(skb, &wide, BPF_F_CURRENT_CPU, &v, sizeof(v));
	return 0;
}

char _license[] SEC("license") = "GPL";
