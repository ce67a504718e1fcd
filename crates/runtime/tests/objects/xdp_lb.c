/* An XDP layer-4 load balancer sending TCP and UDP packets for the virtual address 10.0.0.100
 * back out of the interface they came in on (XDP_TX) towards one of two backends, 10.0.1.1 and
 * 10.0.1.2, chosen by the source port's parity: the Ethernet source becomes the old
 * destination (this host), the destination the backend's MAC, the IPv4 destination the
 * backend's address, and the IPv4 and TCP/UDP checksums are updated incrementally (RFC 1624;
 * a UDP checksum of 0, "none", stays 0). Other packets: XDP_PASS.                           */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#define SEC(name) __attribute__((section(name), used))

#define VIP 0x0a000064 /* 10.0.0.100 */

/* The one's complement checksum `check` after a 32-bit word of the summed data changed from
 * `from` to `to` (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).                                 */
static __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum += (~from >> 16) + (~from & 0xffff);
	sum += (to >> 16) + (to & 0xffff);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Points the frame at `backend` (host order): MACs, the L4 checksum at `check` (covering the
 * destination address through the pseudo-header; a UDP checksum of 0 stays 0, a computed 0
 * becomes 0xffff) and the IPv4 header.                                                       */
static __attribute__((always_inline)) int to_backend(struct ethhdr *eth, struct iphdr *ip,
						     __u16 *check, __u32 backend, int udp)
{
	unsigned char mac[ETH_ALEN] = {0x02, 0, 0, 0, 0x01, backend & 0xff};
	__u32 to = __builtin_bswap32(backend);

	if (!udp || *check != 0) {
		__u16 c = csum_replace4(*check, ip->daddr, to);

		*check = udp && c == 0 ? 0xffff : c;
	}
	ip->check = csum_replace4(ip->check, ip->daddr, to);
	ip->daddr = to;
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	return XDP_TX;
}

/* The backend for a source port (network order): 10.0.1.2 for odd ports, 10.0.1.1 for even. */
static __attribute__((always_inline)) __u32 backend_for(__u16 sport)
{
	return __builtin_bswap16(sport) & 1 ? 0x0a000102 : 0x0a000101;
}

SEC("xdp")
int xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != __builtin_bswap16(ETH_P_IP) || ip->ihl != 5)
		return XDP_PASS;
	if (ip->daddr != __builtin_bswap32(VIP))
		return XDP_PASS;
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);

		if ((void *)(udp + 1) > data_end)
			return XDP_PASS;
		return to_backend(eth, ip, &udp->check, backend_for(udp->source), 1);
	}
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = (void *)(ip + 1);

		if ((void *)(tcp + 1) > data_end)
			return XDP_PASS;
		return to_backend(eth, ip, &tcp->check, backend_for(tcp->source), 0);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
