/* What the variable-length header programs share: the XDP context and the headers they parse,
 * written out so that they build without kernel headers. */
#ifndef BPFX_XDP_HDR_H
#define BPFX_XDP_HDR_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))

struct xdp_md {
	__u32 data;
	__u32 data_end;
	__u32 data_meta;
	__u32 ingress_ifindex;
	__u32 rx_queue_index;
	__u32 egress_ifindex;
};

enum { XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX };

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88a8

#define bswap16(x) __builtin_bswap16(x)

struct eth {
	__u8 dst[6];
	__u8 src[6];
	__u16 proto;
};

struct vlan {
	__u16 tci;
	__u16 proto;
};

struct ipv4 {
	__u8 vhl; /* version << 4 | ihl, ihl in 4-byte words */
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

struct ipv6 {
	__u32 vtcfl;
	__u16 len;
	__u8 next;
	__u8 hops;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* An IPv6 extension header (hop-by-hop, routing, destination options): its length is
 * (len + 1) * 8 bytes. */
struct ext {
	__u8 next;
	__u8 len;
};

struct ports {
	__u16 sport;
	__u16 dport;
};

#endif
