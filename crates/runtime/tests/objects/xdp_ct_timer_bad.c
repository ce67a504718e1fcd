/* The unsafe twin of xdp_ct_timer.c: bpf_timer_init is given a pointer 8 bytes before the
 * entry's struct bpf_timer (its packet counter), which the kernel's verifier refuses (a timer
 * must be the value's bpf_timer field) and so does bpfx's. */
#include "xdp_ct_timer.h"

SEC("xdp")
int xdp_ct_timer_bad(struct xdp_md *ctx)
{
	struct ct_key key = { .saddr = ctx->ingress_ifindex, .daddr = 0 };
	struct ct_val *v = bpf_map_lookup_elem(&ct, &key);
	if (!v)
		return XDP_PASS;
	bpf_timer_init((struct bpf_timer *)&v->packets, &ct, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&v->timer, ct_expire);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
