/* The filters of the replay bench (`benches/replay.rs`), written once and built twice: for BPF
 * (fw.c, lb.c, pass.c: XDP programs with their maps) and natively (native.c: the same bodies over
 * plain C tables, the ceiling bpfx is measured against). This header has the types and the map
 * contents; bodies.h has the bodies, which take the frame's bounds and reach their maps through
 * the macros each build defines before including it:
 *
 *   RULE_LOOKUP(key)     const u32 *        fw's rules (HASH: struct rule_key -> action)
 *   FW_STAT(verdict)     struct stat *      fw's per-CPU counters (PERCPU_ARRAY, 4 entries)
 *   VIP_LOOKUP(key)      const struct vip * lb's services (HASH: struct vip_key -> struct vip)
 *   BACKEND(index)       const struct backend *  lb's backends (ARRAY, MAX_BACKENDS entries)
 *   LB_STAT(index)       struct stat *      lb's per-CPU counters per backend (PERCPU_ARRAY)
 *
 * The map contents are the tables at the end (RULES, VIPS, BACKENDS): the bench fills the BPF
 * maps from them (through native.c), so every build sees the same entries. */
#ifndef BPFX_REPLAY_H
#define BPFX_REPLAY_H

typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;

#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2
#define XDP_TX 3

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_8021Q 0x8100
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define MAX_BACKENDS 64

/* Network-order constants on the little-endian hosts and BPF target this runs on. */
#define HTONS(x) ((u16)((((x) & 0xff) << 8) | (((x) >> 8) & 0xff)))
#define IPV4(a, b, c, d) ((u32)(a) | (u32)(b) << 8 | (u32)(c) << 16 | (u32)(d) << 24)

struct ethhdr {
	u8 dst[6];
	u8 src[6];
	u16 proto;
};

struct iphdr {
	u8 ver_ihl;
	u8 tos;
	u16 tot_len;
	u16 id;
	u16 frag_off;
	u8 ttl;
	u8 protocol;
	u16 check;
	u32 saddr;
	u32 daddr;
};

/* The first 4 bytes of TCP and UDP: the ports. */
struct ports {
	u16 source;
	u16 dest;
};

/* fw: a rule matches a source address, a destination port and a protocol. */
struct rule_key {
	u32 saddr;
	u16 dport;
	u8 proto;
	u8 pad;
};

struct stat {
	u64 packets;
	u64 bytes;
};

/* lb: a service (virtual address, port, protocol) is a run of backends. */
struct vip_key {
	u32 daddr;
	u16 dport;
	u8 proto;
	u8 pad;
};

struct vip {
	u32 first;
	u32 count;
};

struct backend {
	u32 addr;
	u8 mac[6];
	u16 pad;
};

/* The map contents, entry i of each table (0 when i is past its end). fw: 16 rules on sources
 * 10.0.0.0-10.0.0.15, dropping DNS (UDP 53) from the even ones and passing (an explicit allow)
 * SSH (TCP 22) from the odd ones. */
#define N_RULES 16
static inline int rule_entry(u32 i, struct rule_key *key, u32 *action)
{
	if (i >= N_RULES)
		return 0;
	key->saddr = IPV4(10, 0, 0, i);
	key->dport = (i & 1) ? HTONS(22) : HTONS(53);
	key->proto = (i & 1) ? IPPROTO_TCP : IPPROTO_UDP;
	key->pad = 0;
	*action = (i & 1) ? XDP_PASS : XDP_DROP;
	return 1;
}

/* lb: two services, 192.0.2.1 TCP 80 on backends 0-7 and 192.0.2.2 UDP 53 on backends 8-11. */
#define N_VIPS 2
static inline int vip_entry(u32 i, struct vip_key *key, struct vip *v)
{
	if (i >= N_VIPS)
		return 0;
	key->daddr = IPV4(192, 0, 2, 1 + i);
	key->dport = i ? HTONS(53) : HTONS(80);
	key->proto = i ? IPPROTO_UDP : IPPROTO_TCP;
	key->pad = 0;
	v->first = i ? 8 : 0;
	v->count = i ? 4 : 8;
	return 1;
}

/* Backend i: 10.1.0.i, MAC 02:00:00:00:01:i. */
#define N_BACKENDS 12
static inline int backend_entry(u32 i, struct backend *b)
{
	if (i >= N_BACKENDS)
		return 0;
	b->addr = IPV4(10, 1, 0, i);
	b->mac[0] = 2;
	b->mac[1] = b->mac[2] = b->mac[3] = 0;
	b->mac[4] = 1;
	b->mac[5] = (u8)i;
	b->pad = 0;
	return 1;
}

#endif
