/* Global data and a subprogram: a read-only multiplier in .rodata, a run counter in .data, the
 * last result in .bss, and a non-inlined function that scales a sum. Runs on a plain buffer:
 * returns (sum of its bytes) * multiplier + runs so far, and prints the sum with bpf_printk.
 * Its section, `mem`, names no kernel program type: bpfx gives it plain memory.
 *
 *   bpfx run examples/globals.o --mem examples/tcp-syn.bin --dump-maps
 *   => 8713 (2571 * 3 + 1000), stderr "sum=2571 len=54"; .bss holds runs = 1, last_result */
#include "bpf_helpers.h"

const volatile __u64 multiplier = 3; /* .rodata */
__u64 runs = 0;                      /* .bss */
__u64 base = 1000;                   /* .data */
__u64 last_result;                   /* .bss */

static __noinline __u64 scale(__u64 x)
{
	return x * multiplier + base;
}

SEC("mem")
int sum_bytes(__u8 *buf, __u64 len)
{
	__u64 sum = 0;
	for (__u32 i = 0; i < 256 && i < len; i++)
		sum += buf[i];
	bpf_printk("sum=%llu len=%llu\n", sum, len);
	__u64 r = scale(sum) + runs;
	runs++;
	last_result = r;
	return r;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
