/* cgroup_skb programs the kernel refuses (tests/cgroup_skb.rs), each the unsafe twin of a
 * program of cgskb.c; each cgskb_bad_N.c defines CASE and includes this body:
 *   1: egress rewriting the IP TTL through direct packet access (the packet is read-only);
 *   2: ingress copying bytes with bpf_skb_load_bytes into the packet itself;
 *   3: ingress reading tc_classid (a TC field, not a cgroup skb one);
 *   4: ingress returning 2 (ingress programs return 0 or 1; egress may return 2). */
#include <linux/bpf.h>
#include <linux/ip.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_skb_load_bytes)(const void *skb, __u32 offset, void *to, __u32 len) = (void *)26;

#if CASE == 1
SEC("cgroup_skb/egress")
int egress_ttl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;

	if ((void *)(ip + 1) > data_end)
		return 1;
	ip->ttl = 1;
	return 1;
}
#elif CASE == 2
SEC("cgroup_skb/ingress")
int ingress_copy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (data + 8 > data_end)
		return 1;
	return bpf_skb_load_bytes(skb, 8, data, 8) == 0;
}
#elif CASE == 3
SEC("cgroup_skb/ingress")
int ingress_classid(struct __sk_buff *skb)
{
	return skb->tc_classid != 0;
}
#else
SEC("cgroup_skb/ingress")
int ingress_cn(struct __sk_buff *skb)
{
	return skb->len > 100 ? 2 : 1;
}
#endif

char _license[] SEC("license") = "GPL";
