/* A conntrack entry per IPv4 (saddr, daddr) whose expiry is a bpf_timer in the entry, as
 * host firewalls clean their connection tables. The results of the timer helpers are written
 * as twelve little-endian s32 words after the IPv4 header, so a test run shows each (and the
 * kernel's run can be compared with bpfx's). The IPv4 TOS byte picks what a packet does:
 *
 * new flow:   [0] start, [1] cancel, [2] set_callback before init (-EINVAL each), [3] init,
 *             [4] set_callback, [5] start (0 each), [6] cancel of the armed timer (1), [7]
 *             start again (-EINVAL: cancel dropped the callback), [8] set_callback, [9] start
 *             (0 each: armed again);
 * known flow: [0] init again (-EBUSY; with TOS 1 a clock id of 5: -EINVAL), [1] cancel (1 if
 *             armed), [2] cancel again (0), [3] start (-EINVAL), [4] set_callback (0), [5]
 *             start (0; with TOS 2 the flags 4: -EINVAL), [6] init with CLOCK_BOOTTIME
 *             (-EBUSY), [7] the packets seen before. */
#include "xdp_ct_timer.h"
#include <linux/ip.h>

SEC("xdp")
int xdp_ct_timer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 14 + 20 + 48 > end)
		return XDP_PASS;
	unsigned char *eth = data;
	if (eth[12] != 0x08 || eth[13] != 0x00)
		return XDP_PASS;
	struct iphdr *ip = data + 14;
	__s32 *out = data + 34;
	struct ct_key key = { .saddr = ip->saddr, .daddr = ip->daddr };
	__u8 tos = ip->tos;
	struct ct_val *v = bpf_map_lookup_elem(&ct, &key);
	if (!v) {
		struct ct_val fresh = {};
		if (bpf_map_update_elem(&ct, &key, &fresh, BPF_NOEXIST))
			return XDP_ABORTED;
		v = bpf_map_lookup_elem(&ct, &key);
		if (!v)
			return XDP_ABORTED;
		out[0] = bpf_timer_start(&v->timer, CT_TIMEOUT_NS, 0);
		out[1] = bpf_timer_cancel(&v->timer);
		out[2] = bpf_timer_set_callback(&v->timer, ct_expire);
		out[3] = bpf_timer_init(&v->timer, &ct, CLOCK_MONOTONIC);
		out[4] = bpf_timer_set_callback(&v->timer, ct_expire);
		out[5] = bpf_timer_start(&v->timer, CT_TIMEOUT_NS, 0);
		out[6] = bpf_timer_cancel(&v->timer);
		out[7] = bpf_timer_start(&v->timer, CT_TIMEOUT_NS, 0);
		out[8] = bpf_timer_set_callback(&v->timer, ct_expire);
		out[9] = bpf_timer_start(&v->timer, CT_TIMEOUT_NS, 0);
	} else {
		out[0] = bpf_timer_init(&v->timer, &ct, tos == 1 ? 5 : CLOCK_MONOTONIC);
		out[1] = bpf_timer_cancel(&v->timer);
		out[2] = bpf_timer_cancel(&v->timer);
		out[3] = bpf_timer_start(&v->timer, CT_TIMEOUT_NS, 0);
		out[4] = bpf_timer_set_callback(&v->timer, ct_expire);
		out[5] = bpf_timer_start(&v->timer, CT_TIMEOUT_NS, tos == 2 ? 4 : 0);
		out[6] = bpf_timer_init(&v->timer, &ct, 7);
		out[7] = (__s32)v->packets;
	}
	v->packets++;
	v->last_len = (__u64)(end - data);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
