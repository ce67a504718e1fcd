/* An open-ended walk over type-length records after the Ethernet header (tests/may_goto_strict.rs):
 * each record is a type byte and a length byte, the next record starts `length` bytes further
 * (0 repeats the record), a type of 0 ends the list. Only `can_loop` bounds the walk: a zero
 * length goes round until the run's may_goto counter runs out. The hash of the types seen and
 * the final offset go into the frame's first four bytes; the verdict is XDP_TX when the list
 * ended with type 0, XDP_PASS when the walk stopped otherwise, XDP_DROP for a runt frame.
 * Without may_goto, Strict mode cannot prove the loop ends (a zero length repeats a state). */
#include <linux/bpf.h>
#include "can_loop.h"

#define SEC(name) __attribute__((section(name), used))

SEC("xdp")
int xdp_tlv_walk(struct xdp_md *ctx)
{
	unsigned char *data = (unsigned char *)(long)ctx->data;
	unsigned char *end = (unsigned char *)(long)ctx->data_end;
	__u32 off = 14, hash = 0;
	int verdict = XDP_PASS;
	if (data + 14 > end)
		return XDP_DROP;
	while (can_loop) {
		if (off > 1024)
			break;
		unsigned char *q = data + off;
#ifndef UNSAFE
		if (q + 2 > end)
			break;
#else
		/* The twin checks one byte too few: q[1] may lie past the end. */
		if (q + 1 > end)
			break;
#endif
		if (q[0] == 0) {
			verdict = XDP_TX;
			break;
		}
		hash = hash * 31 + q[0];
		off += q[1];
	}
	data[0] = hash;
	data[1] = hash >> 8;
	data[2] = off;
	data[3] = off >> 8;
	return verdict;
}

char _license[] SEC("license") = "GPL";
