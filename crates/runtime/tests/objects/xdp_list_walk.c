/* A linked list kept in a map value's arrays (tests/may_goto_strict.rs): slot i holds a value
 * and the index of the next slot, an index of 64 or more ends the list. The walk starts at the
 * slot the frame's first byte names (modulo 64) and is bounded only by `can_loop`: a list with
 * a cycle goes round until the run's may_goto counter runs out. The hash of the values and the
 * number of slots visited go into the frame's first eight bytes; the verdict is XDP_TX, or
 * XDP_DROP for a runt frame, XDP_ABORTED when the lookup fails. Without may_goto, Strict mode
 * cannot prove the loop ends (the hop count grows without a bound). */
#include <linux/bpf.h>
#include "can_loop.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

struct list {
	__u32 next[64];
	__u32 val[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct list);
} lists SEC(".maps");

SEC("xdp")
int xdp_list_walk(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	__u32 key = 0;
	if (data + 14 > end)
		return XDP_DROP;
	struct list *l = bpf_map_lookup_elem(&lists, &key);
	if (!l)
		return XDP_ABORTED;
	__u32 i = data[0] & 63, hash = 0, hops = 0;
	while (can_loop) {
		hash = hash * 31 + l->val[i];
		hops++;
		__u32 n = l->next[i];
#ifndef UNSAFE
		if (n >= 64)
			break;
#else
		/* The twin's end test lets index 64 through: val[64] is past the array. */
		if (n > 64)
			break;
#endif
		i = n;
	}
	data[0] = hash;
	data[1] = hash >> 8;
	data[2] = hash >> 16;
	data[3] = hash >> 24;
	data[4] = hops;
	data[5] = hops >> 8;
	data[6] = hops >> 16;
	data[7] = hops >> 24;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
