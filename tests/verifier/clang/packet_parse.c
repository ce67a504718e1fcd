#include "bpf.h"

struct eth {
	__u8 dst[6];
	__u8 src[6];
	__u16 proto;
};

struct ipv4 {
	__u8 vhl;
	__u8 tos;
	__u16 len;
	__u16 id;
	__u16 frag;
	__u8 ttl;
	__u8 proto;
	__u16 csum;
	__u32 saddr;
	__u32 daddr;
};

struct udp {
	__u16 sport;
	__u16 dport;
	__u16 len;
	__u16 csum;
};

/* Ethernet, IPv4 and UDP headers parsed behind data_end checks, as an XDP program would. */
SEC("xdp")
int packet_parse(struct pkt_ctx *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth *eth = data;
	if ((void *)(eth + 1) > data_end)
		return 0;
	if (eth->proto != 0x0008)
		return 1;
	struct ipv4 *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return 0;
	if (ip->proto != 17)
		return 2;
	struct udp *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return 0;
	return udp->dport == 0x3500 ? 3 : 4;
}
