/* __ksym externs next to a program that needs none: kernel functions (kfuncs) and variables
 * exist only in a kernel, so the programs that need them cannot run here; the others must. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

extern void *bpf_obj_new_impl(__u64 local_type_id, void *meta) __ksym;
extern const int bpf_prog_active __ksym;
extern int bpf_optional_kfunc(int x) __ksym __weak;
/* Declared without __ksym: a function another object was to provide at static link time. */
extern int helper_from_other_object(int x);

/* [0] frames counted, [1] runs that found the weak kfunc absent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&runs, &key);
	if (v)
		*v += 1;
}

SEC("xdp")
int counts(struct xdp_md *ctx)
{
	count(0);
	return XDP_PASS;
}

SEC("xdp")
int allocates(struct xdp_md *ctx)
{
	return bpf_obj_new_impl(1, 0) ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int reads_ksym(struct xdp_md *ctx)
{
	return bpf_prog_active ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int probes_weak(struct xdp_md *ctx)
{
	/* libbpf's bpf_ksym_exists(): the address of an absent weak ksym is 0. */
	if (bpf_optional_kfunc)
		return bpf_optional_kfunc(1);
	count(1);
	return XDP_PASS;
}

SEC("xdp")
int links_elsewhere(struct xdp_md *ctx)
{
	return helper_from_other_object(2);
}

SEC("xdp")
int calls_weak_unguarded(struct xdp_md *ctx)
{
	/* Reachable: the verifier refuses the call of the absent weak kfunc. */
	return bpf_optional_kfunc(2);
}
