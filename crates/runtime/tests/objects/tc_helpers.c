/* A TC program that calls skb_load_bytes_relative, csum_update, set_hash and get_hash_recalc
 * and writes what they gave into the packet's payload (from byte 34, after the Ethernet and
 * IPv4 headers), so a run's output frame shows each result: the bytes each load copied (or
 * the zeros a failed one leaves) and each return value, as little-endian u64s.
 *
 *   34  4 bytes: the IPv4 source address, read from the network header (offset 12)
 *   38  2 bytes: the EtherType, read from the MAC header (offset 12), then 2 zero bytes
 *   42  4 bytes: a read past the packet's end (zeroed by the helper)
 *   46  4 bytes: a read with an unknown start_header (zeroed)
 *   50  u64 x 6: the four loads' results, csum_update's, get_hash_recalc's after set_hash
 *   98  u32: __sk_buff.hash after them
 * Returns TC_ACT_OK, or TC_ACT_SHOT when the frame is shorter than 102 bytes. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static __u32 (*bpf_get_hash_recalc)(void *skb) = (void *)34;
static __s64 (*bpf_csum_update)(void *skb, __u32 csum) = (void *)40;
static long (*bpf_set_hash)(void *skb, __u32 hash) = (void *)48;
static long (*bpf_skb_load_bytes_relative)(const void *skb, __u32 offset, void *to, __u32 len,
					   __u32 start_header) = (void *)68;

SEC("tc")
int tc_helpers(struct __sk_buff *skb)
{
	__u8 bytes[16] = {};
	__u64 rets[6];
	__u32 hash;

	if (skb->len < 102)
		return TC_ACT_SHOT;
	rets[0] = bpf_skb_load_bytes_relative(skb, 12, &bytes[0], 4, BPF_HDR_START_NET);
	rets[1] = bpf_skb_load_bytes_relative(skb, 12, &bytes[4], 2, BPF_HDR_START_MAC);
	__builtin_memset(&bytes[8], 0xee, 8);
	rets[2] = bpf_skb_load_bytes_relative(skb, skb->len - 16, &bytes[8], 4, BPF_HDR_START_NET);
	rets[3] = bpf_skb_load_bytes_relative(skb, 0, &bytes[12], 4, 2);
	rets[4] = bpf_csum_update(skb, 0x1234);
	bpf_set_hash(skb, 0xabcdef01);
	rets[5] = bpf_get_hash_recalc(skb);
	hash = skb->hash;
	bpf_skb_store_bytes(skb, 34, bytes, sizeof(bytes), 0);
	bpf_skb_store_bytes(skb, 50, rets, sizeof(rets), 0);
	bpf_skb_store_bytes(skb, 98, &hash, sizeof(hash), 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
