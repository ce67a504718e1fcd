/* Lightweight tunnel programs in the style of route-attached filters and rewriters
 * (`ip route add ... encap bpf in obj lwt.o section lwt_in`; tests/lwt.rs).
 *
 * - lwt_in `in_filter`: drops IPv4 packets from a blocked /24 (`blocked`, by the source's first
 *   three bytes) and TCP to port 23; marks passed TCP packets 0x11 and stores the packet's
 *   length in cb[0]; counts passes and drops in `counts`. Not IPv4 (or too short): passes.
 * - lwt_out `out_count`: counts the IP protocol of each packet read with bpf_skb_load_bytes
 *   (`protos`, by protocol number; IPv6 by next header) and passes.
 * - lwt_xmit `xmit_dscp`: UDP over IPv4 to port 5060 gets DSCP EF (the TOS byte rewritten with
 *   bpf_skb_store_bytes and the header checksum fixed with bpf_l3_csum_replace), then is
 *   redirected to `cfg[0]` when it is set (BPF_REDIRECT), else goes on (BPF_OK); priority 6.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c lwt.c -o lwt.o */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len, __u64 flags) = (void *)9;
static long (*bpf_l3_csum_replace)(void *skb, __u32 offset, __u64 from, __u64 to, __u64 size) = (void *)10;
static long (*bpf_redirect)(__u32 ifindex, __u64 flags) = (void *)23;
static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u8);
} blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} protos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

static void bump(void *map, __u32 i)
{
	__u64 *n = bpf_map_lookup_elem(map, &i);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static int verdict(int v)
{
	bump(&counts, v == BPF_DROP);
	return v;
}

SEC("lwt_in")
int in_filter(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;
	unsigned char *end = (void *)(long)skb->data_end;
	__u32 net;

	if (data + 20 > end || (data[0] >> 4) != 4)
		return verdict(BPF_OK);
	net = data[12] | data[13] << 8 | data[14] << 16;
	if (bpf_map_lookup_elem(&blocked, &net))
		return verdict(BPF_DROP);
	if (data[9] == IPPROTO_TCP) {
		unsigned char *l4 = data + (data[0] & 0xf) * 4;
		if (l4 + 4 > end)
			return verdict(BPF_DROP);
		if (l4[2] == 0 && l4[3] == 23)
			return verdict(BPF_DROP);
		skb->mark = 0x11;
		skb->cb[0] = skb->len;
	}
	return verdict(BPF_OK);
}

SEC("lwt_out")
int out_count(struct __sk_buff *skb)
{
	__u8 hdr[10];
	__u32 proto;

	if (bpf_skb_load_bytes(skb, 0, hdr, 10) < 0)
		return BPF_OK;
	proto = (hdr[0] >> 4) == 6 ? hdr[6] : hdr[9];
	bump(&protos, proto);
	return BPF_OK;
}

SEC("lwt_xmit")
int xmit_dscp(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;
	unsigned char *end = (void *)(long)skb->data_end;
	__u32 zero = 0, *ifindex;
	__u16 old, new;
	__u8 tos = 46 << 2;

	if (data + 28 > end || data[0] != 0x45 || data[9] != IPPROTO_UDP)
		return BPF_OK;
	if (data[22] != 0x13 || data[23] != 0xc4)
		return BPF_OK;
	old = *(__u16 *)data;
	new = __builtin_bswap16((__builtin_bswap16(old) & 0xff00) | tos);
	if (bpf_skb_store_bytes(skb, 1, &tos, 1, 0) < 0)
		return BPF_DROP;
	if (bpf_l3_csum_replace(skb, 10, old, new, 2) < 0)
		return BPF_DROP;
	skb->priority = 6;
	ifindex = bpf_map_lookup_elem(&cfg, &zero);
	if (ifindex && *ifindex)
		return bpf_redirect(*ifindex, 0);
	return BPF_OK;
}

char _license[] SEC("license") = "GPL";
