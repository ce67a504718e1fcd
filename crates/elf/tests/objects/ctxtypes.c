// Programs in sections that name no program type (iproute2 loads them by `sec <name>`), each
// declaring its context through its first parameter: the BTF of each FUNC says which struct.
// The structs are declared here, not taken from the kernel's headers: only their names matter.

#define __section(s) __attribute__((section(s), used))

struct xdp_md;
struct __sk_buff {
	unsigned int len;
};
struct pt_regs;

typedef struct xdp_md xdp_ctx_t;
typedef const volatile xdp_ctx_t cv_xdp_t;

// A pointer to a struct, directly.
__section("ingress") int cls_in(struct __sk_buff *skb)
{
	return skb->len > 100;
}

// Through a typedef and qualifiers on the pointee, and a const pointer.
__section("mapper") int xdp_typedef(cv_xdp_t *const ctx)
{
	return 2;
}

// A forward declaration (never dereferenced) names the struct too.
__section("probe_here") int regs_fwd(struct pt_regs *regs)
{
	return 0;
}

// No struct behind the first parameter: no context type.
__section("out") int plain_void(void *ctx)
{
	return 1;
}

__section("unwrap") int plain_int(int *p)
{
	return 3;
}

char _license[] __section("license") = "GPL";
