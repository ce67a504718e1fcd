#include "bpf.h"

/* A bounded loop over packet bytes, each one checked against data_end. */
SEC("xdp")
int packet_scan(struct pkt_ctx *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *data_end = (void *)(long)ctx->data_end;
	__u32 zeros = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < 32; i++) {
		if (data + i + 1 > data_end)
			break;
		if (data[i] == 0)
			zeros++;
	}
	return zeros;
}
