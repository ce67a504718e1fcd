/* bpf_loop (helper 181) in libbpf style, for tests/callbacks.rs. Build: see build.sh. The input
 * is plain memory: struct in { __u32 n; __u32 stop; __u8 bytes[64]; }. */
#include "defs.h"

static long (*bpf_loop)(__u32 nr_loops, void *callback_fn, void *callback_ctx, __u64 flags) = (void *)181;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} loops SEC(".maps");

struct in {
	__u32 n;
	__u32 stop;
	unsigned char bytes[64];
};

struct sum_ctx {
	__u64 sum;
	__u64 calls;
};

static long add_square(__u64 i, void *c)
{
	struct sum_ctx *s = c;
	s->sum += i * i;
	s->calls++;
	return 0;
}

/* Sum of i*i for i < n (n from the input, up to 1000 loops), plus 1000000 * the result. */
SEC("bpfx_test")
int sum_squares(struct in *in)
{
	struct sum_ctx s = {0, 0};
	long r = bpf_loop(in->n, add_square, &s, 0);
	return s.sum + 1000000 * (__u64)r + 1000 * s.calls;
}

struct parse_ctx {
	struct in *in;
	__u64 value;
};

/* Parses decimal digits of in->bytes until a non-digit: the callback returns 1 to stop. */
static long digit(__u64 i, void *c)
{
	struct parse_ctx *p = c;
	if (i >= 64)
		return 1;
	unsigned char b = p->in->bytes[i];
	if (b < '0' || b > '9')
		return 1;
	p->value = p->value * 10 + (b - '0');
	return 0;
}

SEC("bpfx_test")
int parse_number(struct in *in)
{
	struct parse_ctx p = {in, 0};
	long r = bpf_loop(64, digit, &p, 0);
	return p.value * 100 + r;
}

struct stop_ctx {
	__u32 stop;
	__u32 seen;
};

static long until(__u64 i, void *c)
{
	struct stop_ctx *s = c;
	s->seen++;
	return i == s->stop;
}

/* nr_loops from the map (the host sets it), stopping early at index in->stop. */
SEC("bpfx_test")
int loops_from_map(struct in *in)
{
	__u32 k = 0;
	__u64 *n = bpf_map_lookup_elem(&loops, &k);
	if (!n)
		return -1;
	struct stop_ctx s = {in->stop, 0};
	long r = bpf_loop(*n, until, &s, 0);
	return r * 1000 + s.seen;
}
