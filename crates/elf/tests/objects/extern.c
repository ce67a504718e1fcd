/* A reference to a variable defined nowhere: libbpf would resolve it as a kconfig or ksym
 * extern; this loader reports it. */
#include "bpf_helpers.h"

extern __u32 ext_var;

SEC("xdp")
int uses_extern(struct xdp_md *ctx)
{
	return ext_var + ctx->data;
}
