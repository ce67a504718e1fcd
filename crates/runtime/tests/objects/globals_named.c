/* Named globals in every global data section, for Object::set_global / get_global: settings in
 * .rodata (`const volatile`, set by the host before loading), state in .data and .bss, an
 * array, a struct with padding, and a variable of a named `.data.stats` section. `apply`, on
 * plain memory {u64 x}, returns x * scale + offset and records it; `limits` returns
 * threshold[input] of the array. */
#include "defs.h"

typedef unsigned char __u8;
typedef unsigned short __u16;

struct totals {
	__u32 calls;
	/* 4 bytes of padding */
	__u64 sum;
};

const volatile __u64 scale = 2;              /* .rodata */
const volatile __u16 threshold[4] = {1, 2, 3, 4}; /* .rodata */
__u64 offset = 5;                            /* .data */
__u8 enabled = 1;                            /* .data */
struct totals totals;                        /* .bss */
__u64 last;                                  /* .bss */
__u32 hits SEC(".data.stats") = 0;           /* .data.stats */

SEC("mem")
int apply(__u64 *x, __u64 len)
{
	if (len < 8 || !enabled)
		return 0;
	__u64 r = *x * scale + offset;
	totals.calls++;
	totals.sum += r;
	last = r;
	hits++;
	return r;
}

SEC("mem")
int limits(__u32 *i, __u64 len)
{
	if (len < 4 || *i >= 4)
		return -1;
	return threshold[*i];
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
