/* cgroup_skb programs in the style of per-cgroup traffic accounting and firewalls
 * (tests/cgroup_skb.rs): the packet starts at the network header and is read-only.
 *
 * - cgroup_skb/egress `egress_account`: counts bytes and packets per IP protocol (IPv4 and
 *   IPv6) in a hash map, records the socket's view of the packet in cb[] (len, protocol, family,
 *   the IPv4 addresses or the last word of the IPv6 ones), marks the packet with the L4
 *   protocol, raises the priority of TCP, and returns 3 (allowed, congestion experienced) for UDP
 *   to port 5201, 0 for anything to 10.9.9.9, 1 otherwise.
 * - cgroup_skb/ingress `ingress_firewall`: reads the transport header with bpf_skb_load_bytes,
 *   drops TCP to port 23 and UDP from port 53 with a payload over 512 bytes, and counts drops
 *   in an array; records the ports it read in cb[0] and the time stamp in tstamp.
 * - cgroup/skb `legacy_allow`: the older section name: allows everything, counting packets by
 *   ifindex.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c cgskb.c -o cgskb.o */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;

#define AF_INET 2
#define AF_INET6 10

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Egress bytes and packets by IP protocol. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct counter);
} by_proto SEC(".maps");

/* Ingress drops: slot 0 telnet, slot 1 large DNS answers; slot 2 packets too short to read. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Packets by ifindex (cgroup/skb). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} by_ifindex SEC(".maps");

static void count(__u32 proto, __u32 len)
{
	struct counter *c = bpf_map_lookup_elem(&by_proto, &proto);

	if (c) {
		__sync_fetch_and_add(&c->packets, 1);
		__sync_fetch_and_add(&c->bytes, len);
	} else {
		struct counter n = { 1, len };

		bpf_map_update_elem(&by_proto, &proto, &n, BPF_NOEXIST);
	}
}

SEC("cgroup_skb/egress")
int egress_account(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 proto = 0, dport = 0, daddr = 0;

	skb->cb[0] = skb->len;
	skb->cb[1] = skb->protocol;
	skb->cb[2] = skb->family;
	if (skb->family == AF_INET) {
		struct iphdr *ip = data;

		skb->cb[3] = skb->local_ip4;
		skb->cb[4] = skb->remote_ip4;
		if ((void *)(ip + 1) > data_end)
			return 1;
		proto = ip->protocol;
		daddr = ip->daddr;
		if (proto == IPPROTO_UDP) {
			struct udphdr *udp = (void *)ip + ip->ihl * 4;

			if ((void *)(udp + 1) <= data_end)
				dport = __builtin_bswap16(udp->dest);
		}
	} else if (skb->family == AF_INET6) {
		struct ipv6hdr *ip6 = data;

		skb->cb[3] = skb->local_ip6[3];
		skb->cb[4] = skb->remote_ip6[3];
		if ((void *)(ip6 + 1) > data_end)
			return 1;
		proto = ip6->nexthdr;
	}
	count(proto, skb->len);
	skb->mark = proto;
	if (proto == IPPROTO_TCP)
		skb->priority = 6;
	if (daddr == __builtin_bswap32(0x0a090909))
		return 0;
	if (proto == IPPROTO_UDP && dport == 5201)
		return 3;
	return 1;
}

SEC("cgroup_skb/ingress")
int ingress_firewall(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u16 ports[2];
	__u32 slot;
	__u64 *n;

	if (skb->protocol != __builtin_bswap16(0x0800))
		return 1;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
		goto short_packet;
	if (bpf_skb_load_bytes(skb, ip.ihl * 4, ports, sizeof(ports)) < 0)
		goto short_packet;
	skb->cb[0] = (__u32)__builtin_bswap16(ports[0]) << 16 | __builtin_bswap16(ports[1]);
	skb->tstamp = 1000000007ull * skb->len;
	if (ip.protocol == IPPROTO_TCP && ports[1] == __builtin_bswap16(23))
		slot = 0;
	else if (ip.protocol == IPPROTO_UDP && ports[0] == __builtin_bswap16(53) &&
		 skb->len > sizeof(ip) + sizeof(struct udphdr) + 512)
		slot = 1;
	else
		return 1;
	n = bpf_map_lookup_elem(&drops, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
short_packet:
	slot = 2;
	n = bpf_map_lookup_elem(&drops, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 1;
}

SEC("cgroup/skb")
int legacy_allow(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	__u64 one = 1, *n = bpf_map_lookup_elem(&by_ifindex, &ifindex);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&by_ifindex, &ifindex, &one, BPF_NOEXIST);
	return 1;
}

char _license[] SEC("license") = "GPL";
