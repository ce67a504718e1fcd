/* A program calling a helper the embedder writes in C (id 0x10000, outside the kernel's
 * range), for bpfx_object_open_mem_vm (tests/c/object.c): returns host_scale(len, 3) + 1.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I../../../../examples -c host_helper.c -o host_helper.o
 */
#include "bpf_helpers.h"

static __u64 (*host_scale)(__u64 x, __u64 y) = (void *)0x10000;

SEC("mem")
int use_host(void *mem, __u64 len)
{
	return host_scale(len, 3) + 1;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
