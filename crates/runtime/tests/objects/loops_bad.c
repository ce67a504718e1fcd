/* Unsafe bpf_loop callbacks the verifier rejects, for tests/callbacks.rs. Build: see build.sh. */
#include "defs.h"

static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

struct ctx8 {
	__u64 v;
};

static long returns_two(__u64 i, void *c)
{
	((struct ctx8 *)c)->v += i;
	return 2;
}

/* The callback's result must be 0 or 1. */
SEC("bpfx_test")
int bad_return(void *in)
{
	struct ctx8 c = {0};
	bpf_loop(4, returns_two, &c, 0);
	return c.v;
}

static long writes_past(__u64 i, void *c)
{
	/* ctx is 8 bytes on the caller's stack: index 70 (560 bytes on) is past its frame. */
	volatile __u64 *p = c;
	p[i + 70] = 1;
	return 0;
}

/* The callback writes past the end of the caller's frame through ctx. */
SEC("bpfx_test")
int bad_write(void *in)
{
	struct ctx8 c = {0};
	bpf_loop(4, writes_past, &c, 0);
	return c.v;
}
