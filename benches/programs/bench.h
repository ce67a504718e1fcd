/* Shared by every workload: fixed-width types without libc headers (the BPF target has none),
 * and the entry-point convention.
 *
 * Each workload NAME.c defines ENTRY(NAME), which is `u64 NAME(u8 *mem, u64 len)`: r1 = mem,
 * r2 = len as the eBPF entry, the same signature natively. Built for BPF (`__bpf__`), the entry
 * goes in its own section `bench`; helper functions stay in `.text`, reached through call
 * relocations. Built natively, the entry is named `bpfx_native_NAME` so it cannot clash with any
 * other symbol of the bench binary.
 *
 * A workload may also define INPUT(NAME), `void NAME_input(u8 *mem, u64 len)`, compiled natively
 * only: it shapes the pseudo-random input the harness generates (sorted keys, strings, packets)
 * before any engine runs. Programs use no maps, helpers or global data, so they load as plain
 * sections.
 *
 * Contract (native code and rbpf's JIT run without bounds checks, so the harness relies on it):
 * for any len and any contents of an 8-byte-aligned buffer, ENTRY and INPUT functions read and
 * write only [mem, mem + len), with accesses aligned to their size. */
#ifndef BPFX_BENCH_H
#define BPFX_BENCH_H

typedef __UINT8_TYPE__ u8;
typedef __UINT16_TYPE__ u16;
typedef __UINT32_TYPE__ u32;
typedef __UINT64_TYPE__ u64;
typedef __INT64_TYPE__ i64;

#ifdef __bpf__
#define ENTRY(name) __attribute__((section("bench"))) u64 name(u8 *mem, u64 len)
#else
#define ENTRY(name) u64 bpfx_native_##name(u8 *mem, u64 len)
#define INPUT(name) void bpfx_input_##name(u8 *mem, u64 len)
#endif

#define NOINLINE __attribute__((noinline))

/* Unaligned little-endian loads and stores spelled out byte by byte would hide the shape of
 * the workloads; every buffer the harness passes is 8-byte aligned and every access below is
 * aligned to its size. */
static inline u32 load32(const u8 *p) { return *(const u32 *)p; }
static inline u64 load64(const u8 *p) { return *(const u64 *)p; }
static inline u16 load16_be(const u8 *p) { return (u16)((u16)p[0] << 8 | p[1]); }

#endif
