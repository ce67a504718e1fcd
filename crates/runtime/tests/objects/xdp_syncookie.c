/* An XDP SYN-flood filter in the style of SYN-proxy data planes: a TCP SYN gets a cookie from
 * bpf_tcp_raw_gen_syncookie_ipv4/_ipv6 (the TCP header, with its options, copied to the stack
 * and passed with the length its data offset gives, at most 24 bytes), any other TCP segment
 * is checked as the ACK completing a cookie handshake with bpf_tcp_raw_check_syncookie_ipv4/
 * _ipv6. The helper's answer is written as a little-endian s64 over the frame's first 8
 * bytes (where a SYN proxy would then build its reply). A SYN with a cookie is sent back
 * (XDP_TX), an ACK with a valid one passes, and whatever a helper refuses is dropped. Frames
 * with less than 32 bytes of TCP are aborted; anything not TCP over IPv4 (without IP options)
 * or IPv6 passes untouched.                                                                */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_tcp_raw_gen_syncookie_ipv4)(struct iphdr *iph, struct tcphdr *th,
					      __u32 th_len) = (void *)204;
static long (*bpf_tcp_raw_gen_syncookie_ipv6)(struct ipv6hdr *iph, struct tcphdr *th,
					      __u32 th_len) = (void *)205;
static long (*bpf_tcp_raw_check_syncookie_ipv4)(struct iphdr *iph,
						struct tcphdr *th) = (void *)206;
static long (*bpf_tcp_raw_check_syncookie_ipv6)(struct ipv6hdr *iph,
						struct tcphdr *th) = (void *)207;

#define TCP_COPY 24

/* The length of the TCP header in buf as its data offset gives it, kept within the copy. */
static __u32 tcp_len(const __u8 *buf)
{
	__u32 len = (buf[12] >> 4) * 4;

	if (len > TCP_COPY)
		len = TCP_COPY;
	if (len < 4)
		len = 4;
	return len;
}

SEC("xdp")
int xdp_syncookie(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 buf[TCP_COPY];
	struct tcphdr *th;
	long r;
	int syn;

	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto == __builtin_bswap16(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);

		if ((void *)(iph + 1) > end)
			return XDP_ABORTED;
		if (iph->protocol != IPPROTO_TCP || iph->ihl != 5)
			return XDP_PASS;
		th = (void *)(iph + 1);
		if ((void *)th + TCP_COPY + 8 > end)
			return XDP_ABORTED;
		syn = th->syn && !th->ack;
		if (syn) {
			__builtin_memcpy(buf, th, TCP_COPY);
			r = bpf_tcp_raw_gen_syncookie_ipv4(iph, (void *)buf, tcp_len(buf));
		} else {
			r = bpf_tcp_raw_check_syncookie_ipv4(iph, th);
		}
	} else if (eth->h_proto == __builtin_bswap16(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > end)
			return XDP_ABORTED;
		if (ip6->nexthdr != IPPROTO_TCP)
			return XDP_PASS;
		th = (void *)(ip6 + 1);
		if ((void *)th + TCP_COPY + 8 > end)
			return XDP_ABORTED;
		syn = th->syn && !th->ack;
		if (syn) {
			__builtin_memcpy(buf, th, TCP_COPY);
			r = bpf_tcp_raw_gen_syncookie_ipv6(ip6, (void *)buf, tcp_len(buf));
		} else {
			r = bpf_tcp_raw_check_syncookie_ipv6(ip6, th);
		}
	} else {
		return XDP_PASS;
	}
	if (data + 8 > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, &r, 8);
	if (r < 0)
		return XDP_DROP;
	return syn ? XDP_TX : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
