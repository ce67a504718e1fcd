/* __kconfig externs: the kernel version libbpf computes and kernel configuration values,
 * strong and weak. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern _Bool CONFIG_NO_SUCH_OPTION __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[8] __kconfig __weak;
extern unsigned long long CONFIG_STRONG_AND_ABSENT __kconfig;

/* [0] kernel version, [1] HZ, [2] BPF JIT tristate, [3] the unknown weak option,
 * [4] first byte of the host name. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} config SEC(".maps");

static __always_inline void put(__u32 key, __u64 value)
{
	__u64 *v = bpf_map_lookup_elem(&config, &key);
	if (v)
		*v = value;
}

SEC("socket")
int report(void *ctx)
{
	put(0, LINUX_KERNEL_VERSION);
	put(1, CONFIG_HZ);
	put(2, CONFIG_BPF_JIT);
	put(3, CONFIG_NO_SUCH_OPTION);
	put(4, CONFIG_DEFAULT_HOSTNAME[0]);
	return LINUX_KERNEL_VERSION >= 0x050f00; /* KERNEL_VERSION(5, 15, 0) */
}

SEC("socket")
int needs_strong(void *ctx)
{
	return CONFIG_STRONG_AND_ABSENT > 5;
}
