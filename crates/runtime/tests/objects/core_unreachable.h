/* The "unreachable" marker of CO-RE programs: a call of helper 0xbad2310, the id libbpf and
 * cilium/ebpf write over an instruction whose CO-RE relocation failed, guarding a path the
 * kernel must never take (here: an enum value the kernel's BTF lacks, which bpf_core_enum_value
 * gives as 0). Both the kernel and bpfx accept the call in dead code and refuse it where a path
 * reaches it. CASE 0 guards it with the CO-RE value (dead: XDP_PASS is 2), CASE 1 with a
 * context field (reachable). core_unreachable_0.c and core_unreachable_1.c define CASE and
 * include this file (tests/core_unreachable.rs).                                               */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static void (*bpf_core_unreachable)(void) = (void *)0xbad2310;

SEC("xdp")
int xdp_core_unreachable(struct xdp_md *ctx)
{
	int pass = __builtin_preserve_enum_value(*(typeof(enum xdp_action) *)XDP_PASS, 1 /* value */);

#if CASE == 0
	if (pass == 0)
		bpf_core_unreachable();
#else
	if (ctx->ingress_ifindex == 0)
		bpf_core_unreachable();
#endif
	return pass;
}

char _license[] SEC("license") = "GPL";
