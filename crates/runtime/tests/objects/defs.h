/* The few declarations the memory-limit and per-program-outcome test objects need (no libbpf
 * headers): libbpf's spelling of BTF-defined maps and sections, two helpers by kernel id. */
#ifndef BPFX_RUNTIME_TEST_DEFS_H
#define BPFX_RUNTIME_TEST_DEFS_H

typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

/* Kernel BPF_MAP_TYPE_* numbers (linux/bpf.h). */
enum {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20,
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)2;

#endif
