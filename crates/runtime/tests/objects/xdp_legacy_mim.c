/* A map of maps declared the legacy way (struct bpf_map_def in "maps"), as overlay and
 * per-tenant dataplanes built on libbpf before 1.0 declare them: the object says nothing of
 * the inner maps, whose template the loader gives at creation (libbpf's
 * bpf_map__set_inner_map_fd), here a hash of 4-byte IPv4 destinations to 4-byte XDP verdicts.
 * The IPv4 TOS byte's low two bits pick the tenant; its table's verdict for the destination
 * is returned, XDP_PASS when the tenant has no table or the table no entry. */
#include <linux/bpf.h>
#include <linux/ip.h>

#define SEC(name) __attribute__((section(name), used))

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

struct bpf_map_def SEC("maps") tenants = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 4,
};

SEC("xdp")
int xdp_legacy_mim(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	if (data + 14 + 20 > end)
		return XDP_PASS;
	unsigned char *eth = data;
	if (eth[12] != 0x08 || eth[13] != 0x00)
		return XDP_PASS;
	struct iphdr *ip = data + 14;
	__u32 tenant = ip->tos & 3;
	void *table = bpf_map_lookup_elem(&tenants, &tenant);
	if (!table)
		return XDP_PASS;
	__u32 daddr = ip->daddr;
	__u32 *verdict = bpf_map_lookup_elem(table, &daddr);
	if (!verdict)
		return XDP_PASS;
	return *verdict;
}

char _license[] SEC("license") = "GPL";
