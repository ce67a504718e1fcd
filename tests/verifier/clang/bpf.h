/* The few definitions these programs need, so that they build without kernel headers. */
#ifndef BPFX_TEST_BPF_H
#define BPFX_TEST_BPF_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

/* Helper 1, as in the kernel. */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

/* The packet context these programs take: two 8-byte fields (verified with
 * ContextKind::Packet { data: 0, data_end: 8 }). */
struct pkt_ctx {
	__u64 data;
	__u64 data_end;
};

#endif
