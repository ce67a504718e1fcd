/* An XDP program written for multi-buffer frames (section xdp.frags), as firewalls that must
 * see jumbo or fragmented frames are: it never dereferences the packet, but copies the headers
 * it needs with bpf_xdp_load_bytes, checks the frame's total length with
 * bpf_xdp_get_buff_len, and rewrites the IPv4 TTL with bpf_xdp_store_bytes (fixing the
 * checksum incrementally, RFC 1624). Drops frames shorter than an Ethernet + IPv4 header,
 * passes non-IPv4 ones, and answers the helpers' error codes in the verdict of a probe
 * frame whose first byte asks for an out-of-range copy. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static __u64 (*bpf_xdp_get_buff_len)(struct xdp_md *ctx) = (void *)188;
static long (*bpf_xdp_load_bytes)(struct xdp_md *ctx, __u32 off, void *buf, __u32 len) = (void *)189;
static long (*bpf_xdp_store_bytes)(struct xdp_md *ctx, __u32 off, void *buf, __u32 len) = (void *)190;

struct hdrs {
	unsigned char eth[14];
	unsigned char ip[20];
};

SEC("xdp.frags")
int xdp_bytes(struct xdp_md *ctx)
{
	struct hdrs h;
	__u64 len = bpf_xdp_get_buff_len(ctx);

	if (len < sizeof(h))
		return XDP_DROP;
	if (bpf_xdp_load_bytes(ctx, 0, &h, sizeof(h)))
		return XDP_ABORTED;
	/* Probe frames (locally administered destination 0xfe...): the helpers' answers to a
	 * copy past the frame and to an offset past 0xffff, returned as the verdict's bits. */
	if (h.eth[0] == 0xfe) {
		unsigned char b[4];
		long past = bpf_xdp_load_bytes(ctx, len - 2, b, sizeof(b));
		long far = bpf_xdp_store_bytes(ctx, 0x10000, b, sizeof(b));
		return (past == -22 ? 1 : 0) | (far == -14 ? 2 : 0);
	}
	if (h.eth[12] != 0x08 || h.eth[13] != 0x00 || (h.ip[0] >> 4) != 4)
		return XDP_PASS;
	if (h.ip[8] <= 1)
		return XDP_DROP;
	/* TTL - 1: the checksum word holding it grows by 0x0100 (one's complement sum). */
	__u16 old = (__u16)(h.ip[8] << 8 | h.ip[9]);
	h.ip[8]--;
	__u16 new = (__u16)(h.ip[8] << 8 | h.ip[9]);
	__u32 sum = (__u16)~(h.ip[10] << 8 | h.ip[11]);
	sum += (__u16)~old;
	sum += new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	unsigned char fix[4] = { h.ip[8], h.ip[9], (unsigned char)(~sum >> 8), (unsigned char)~sum };
	if (bpf_xdp_store_bytes(ctx, 14 + 8, fix, sizeof(fix)))
		return XDP_ABORTED;
	return XDP_TX;
}

char _license[] SEC("license") = "GPL";
