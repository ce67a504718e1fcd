/* An XDP flow recorder that picks its table by protocol, as load balancers and firewalls
 * written in C often do: TCP flows go to `tcp_flows`, UDP flows to `udp_flows` (the same
 * layout, sized apart), anything else to no table at all (a null map pointer that the code
 * tests before using). The compiler makes one `map_update_elem` and one `map_lookup_elem`
 * call site whose map register is either table or null, so the verifier sees a map chosen by
 * a branch and a map handle that may be null (`table_for`'s result). Each recorded IPv4 packet gets its flow's
 * record written back over its IP identification and TTL (the table's tag and the update's
 * sequence), and is sent back out (XDP_TX); others pass (XDP_PASS); a record that cannot be
 * stored drops the packet (XDP_DROP).                                                      */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
				   __u64 flags) = (void *)2;

struct flow_key {
	__u32 saddr;
	__u32 daddr;
};

struct flow_rec {
	__u16 tag;
	__u8 seq;
	__u8 proto;
	__u32 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow_key);
	__type(value, struct flow_rec);
} tcp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, struct flow_key);
	__type(value, struct flow_rec);
} udp_flows SEC(".maps");

/* The table of a protocol, or none: its three outcomes merge at the function's exit. */
static __attribute__((noinline)) void *table_for(__u8 proto)
{
	if (proto == IPPROTO_TCP)
		return &tcp_flows;
	if (proto == IPPROTO_UDP)
		return &udp_flows;
	return 0;
}

static __attribute__((always_inline)) int record(struct iphdr *ip, __u8 proto)
{
	void *table = table_for(proto);
	struct flow_key key = {.saddr = ip->saddr, .daddr = ip->daddr};
	struct flow_rec rec = {
		.tag = proto == IPPROTO_TCP ? 0x7cbb : 0x0dbb,
		.seq = (__u8)(ip->ttl + 1),
		.proto = proto,
		.bytes = __builtin_bswap16(ip->tot_len),
	};
	struct flow_rec *got;

	if (!table)
		return XDP_PASS;
	if (bpf_map_update_elem(table, &key, &rec, BPF_ANY))
		return XDP_DROP;
	got = bpf_map_lookup_elem(table, &key);
	if (!got)
		return XDP_DROP;
	ip->id = got->tag;
	ip->ttl = got->seq;
	ip->check = 0;
	return XDP_TX;
}

SEC("xdp")
int xdp_flowsel(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != __builtin_bswap16(ETH_P_IP))
		return XDP_PASS;
	return record(ip, ip->protocol);
}

char _license[] SEC("license") = "GPL";
