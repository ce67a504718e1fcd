/* Shared by every workload: fixed-width types without libc headers (the BPF target has none),
 * and the entry-point convention.
 *
 * Each workload NAME.c defines ENTRY(NAME), which is `u64 NAME(u8 *mem, u64 len)`: r1 = mem,
 * r2 = len as the eBPF entry, the same signature natively. Built for BPF (`__bpf__`), the entry
 * goes in its own section `bench`; helper functions stay in `.text`, reached through call
 * relocations. Built natively, the entry is named `bpfx_clang_NAME` or `bpfx_gcc_NAME` (one
 * build per compiler) so it cannot clash with any other symbol of the bench binary.
 *
 * A workload may also define INPUT(NAME), `void NAME_input(u8 *mem, u64 len)`, compiled natively
 * only: it shapes the pseudo-random input the harness generates (sorted keys, strings, packets)
 * before any engine runs. Programs use no maps, helpers or global data, so they load as plain
 * sections.
 *
 * Contract (native code and rbpf's JIT run without bounds checks, so the harness relies on it):
 * for any len and any contents of an 8-byte-aligned buffer, ENTRY and INPUT functions read and
 * write only [mem, mem + len), with accesses aligned to their size (except through load64u/store64u below). */
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
/* The native side is built once per compiler (clang and gcc, see build.rs), into one binary:
 * BPFX_NATIVE names the compiler, so the entry is `bpfx_clang_NAME` or `bpfx_gcc_NAME`. */
#ifndef BPFX_NATIVE
#error "build.rs defines BPFX_NATIVE (clang or gcc) for native builds"
#endif
#define BPFX_CAT3(a, b, c) a##b##c
#define BPFX_SYMBOL(prefix, compiler, name) BPFX_CAT3(prefix, compiler, name)
#define ENTRY(name) u64 BPFX_SYMBOL(bpfx_, BPFX_NATIVE, _##name)(u8 *mem, u64 len)
#define INPUT(name) void BPFX_SYMBOL(bpfx_input_, BPFX_NATIVE, _##name)(u8 *mem, u64 len)
#endif

#define NOINLINE __attribute__((noinline))

/* Unaligned little-endian loads and stores spelled out byte by byte would hide the shape of
 * the workloads; every buffer the harness passes is 8-byte aligned and every access below is
 * aligned to its size. */
static inline u32 load32(const u8 *p) { return *(const u32 *)p; }
static inline u64 load64(const u8 *p) { return *(const u64 *)p; }
static inline u16 load16_be(const u8 *p) { return (u16)((u16)p[0] << 8 | p[1]); }

/* 8-byte words at any address: eBPF loads and stores take any alignment on bpfx and rbpf (and
 * clang would split them into byte accesses if told the pointer may be unaligned), so the BPF
 * build dereferences; natively a memcpy, which x86-64 compilers turn into one `mov`. */
#ifdef __bpf__
static inline u64 load64u(const u8 *p) { return *(const u64 *)p; }
static inline void store64u(u8 *p, u64 v) { *(u64 *)p = v; }
#else
static inline u64 load64u(const u8 *p)
{
	u64 v;
	__builtin_memcpy(&v, p, 8);
	return v;
}
static inline void store64u(u8 *p, u64 v) { __builtin_memcpy(p, &v, 8); }
#endif

#ifndef __bpf__
static inline void put16(u8 *p, u64 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }

/* The input of the packet parsers (`packet`, `packet_calls`): a sequence of records, each a
 * 16-bit big-endian length then the frame. Records of 60..124 bytes: mostly IPv4 TCP and UDP,
 * some VLAN-tagged, some with IP options, a few non-IP or truncated ones, so every branch of
 * the parser runs. */
static inline void shape_packets(u8 *mem, u64 len)
{
	u64 off = 0;
	while (off + 2 + 124 <= len) {
		u8 *p = mem + off + 2;
		u8 r = p[0], s = p[1];
		u64 rec = 60 + (r & 63);
		u64 l3 = (s & 7) == 0 ? 18 : 14;
		if (l3 == 18) { put16(p + 12, 0x8100); put16(p + 16, 0x0800); }
		else put16(p + 12, (s & 31) == 9 ? 0x86dd : 0x0800);
		u64 ihl = (s & 8) ? 6 : 5;
		u8 *ip = p + l3;
		ip[0] = (u8)(0x40 | ihl);
		u64 total = rec - l3 - ((r >> 6) & 1) * 4;
		put16(ip + 2, (s & 63) == 17 ? rec : total);
		ip[9] = (s & 16) ? 6 : (s & 32) ? 17 : (u8)(1 + (s & 1));
		put16(mem + off, rec);
		off += 2 + rec;
	}
	/* A zero length ends the parse cleanly. */
	if (off + 2 <= len)
		put16(mem + off, 0);
	for (off += 2; off < len; off++)
		mem[off] = 0;
}
#endif

#endif
