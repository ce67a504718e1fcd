/* The replay bench's run-entry probe: an XDP program that only returns XDP_PASS, so its time per
 * packet is what the run entry costs (context set-up, the call, the verdict). */
#include "replay.h"
#include "bpf.h"

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
