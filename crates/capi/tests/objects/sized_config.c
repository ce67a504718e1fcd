/* A program whose map is sized and whose __kconfig value is given when the object is opened,
 * for bpfx_object_opts.max_entries and .kconfig (tests/c/opts.c): `sized` stores CONFIG_HZ at
 * index 3 of `slots` and passes the packet, or aborts when `slots` has no index 3.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c sized_config.c -o sized_config.o
 */
#include "bpf_helpers.h"

/* libbpf's __kconfig (bpf_helpers.h of the examples does not define it). */
#define __kconfig __attribute__((section(".kconfig")))

extern int CONFIG_HZ __kconfig;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

SEC("xdp")
int sized(struct xdp_md *ctx)
{
	__u32 key = 3;
	__u64 *v = bpf_map_lookup_elem(&slots, &key);

	if (!v)
		return XDP_ABORTED;
	*v = CONFIG_HZ;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
