/* One resizing helper per run, chosen with its arguments by the packet's last 20 bytes (five
 * host-order u32: the helper's kernel id, then its arguments; the 64-bit flags of
 * skb_adjust_room as two halves, low first), for comparing the helpers' results, packets and
 * metadata with the kernel's over many cases. Returns the helper's result (as the low 32 bits
 * the test run reports); cb[] keeps len, protocol, vlan_present, vlan_tci and vlan_proto after
 * it. A packet shorter than the 20 bytes, or an id of none of them: 0xdead.                */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;
static long (*bpf_clone_redirect)(struct __sk_buff *skb, __u32 ifindex, __u64 flags) = (void *)13;
static long (*bpf_skb_vlan_push)(struct __sk_buff *skb, __u16 proto, __u16 tci) = (void *)18;
static long (*bpf_skb_vlan_pop)(struct __sk_buff *skb) = (void *)19;
static long (*bpf_skb_change_proto)(struct __sk_buff *skb, __u16 proto, __u64 flags) = (void *)31;
static long (*bpf_skb_change_tail)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)38;
static long (*bpf_skb_pull_data)(struct __sk_buff *skb, __u32 len) = (void *)39;
static long (*bpf_skb_change_head)(struct __sk_buff *skb, __u32 len, __u64 flags) = (void *)43;
static long (*bpf_skb_adjust_room)(struct __sk_buff *skb, __s32 len_diff, __u32 mode,
				   __u64 flags) = (void *)50;

SEC("tc")
int tc_resize_probe(struct __sk_buff *skb)
{
	__u32 a[5];
	long r;

	if (skb->len < sizeof(a) || bpf_skb_load_bytes(skb, skb->len - sizeof(a), a, sizeof(a)) < 0)
		return 0xdead;
	switch (a[0]) {
	case 13:
		r = bpf_clone_redirect(skb, a[1], a[2]);
		break;
	case 18:
		r = bpf_skb_vlan_push(skb, a[1], a[2]);
		break;
	case 19:
		r = bpf_skb_vlan_pop(skb);
		break;
	case 31:
		r = bpf_skb_change_proto(skb, a[1], a[2]);
		break;
	case 38:
		r = bpf_skb_change_tail(skb, a[1], a[2]);
		break;
	case 39:
		r = bpf_skb_pull_data(skb, a[1]);
		break;
	case 43:
		r = bpf_skb_change_head(skb, a[1], a[2]);
		break;
	case 50:
		r = bpf_skb_adjust_room(skb, a[1], a[2], (__u64)a[4] << 32 | a[3]);
		break;
	default:
		return 0xdead;
	}
	/* One load per field (the kernel refuses a load spanning two). */
	skb->cb[0] = *(volatile __u32 *)&skb->len;
	skb->cb[1] = *(volatile __u32 *)&skb->protocol;
	skb->cb[2] = *(volatile __u32 *)&skb->vlan_present;
	skb->cb[3] = *(volatile __u32 *)&skb->vlan_tci;
	skb->cb[4] = *(volatile __u32 *)&skb->vlan_proto;
	return r;
}

char _license[] SEC("license") = "GPL";
