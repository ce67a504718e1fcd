/* A TC program that writes what the task helpers give into its frame: from byte 16,
 * get_current_comm into 16 bytes, then into 4 bytes (0xee before each), each return value, and
 * get_current_uid_gid, little-endian. Run through `bpftool prog run`, the task is bpftool's.
 *   16  16 bytes: the name, size 16        40  u64: its return value
 *   32   8 bytes: the name, size 4         48  u64: the second's return value
 *                                          56  u64: get_current_uid_gid
 * TC_ACT_OK, or TC_ACT_SHOT for a frame shorter than 64 bytes. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_store_bytes)(void *skb, __u32 offset, const void *from, __u32 len,
				   __u64 flags) = (void *)9;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;

SEC("tc")
int tc_task(struct __sk_buff *skb)
{
	char names[24];
	__u64 rets[3];

	if (skb->len < 64)
		return TC_ACT_SHOT;
	__builtin_memset(names, 0xee, sizeof(names));
	rets[0] = bpf_get_current_comm(&names[0], 16);
	rets[1] = bpf_get_current_comm(&names[16], 4);
	rets[2] = bpf_get_current_uid_gid();
	bpf_skb_store_bytes(skb, 16, names, sizeof(names), 0);
	bpf_skb_store_bytes(skb, 40, rets, sizeof(rets), 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
