/* Ring buffer records as references (tests/ringbuf_refs.rs): an XDP program in the style of the
 * ring buffer users of libbpf-bootstrap reserves an event, returns early (discarding it) when
 * the frame is too short for an Ethernet header, fills it from the frame and submits it. Every
 * path gives the record back exactly once. ringbuf_refs.c builds the safe programs, and
 * ringbuf_refs_bad_N.c (CASE = N) each one unsafe twin the kernel refuses:
 *   1  an early exit that keeps the record (never released on that path),
 *   2  a field written after the record is submitted,
 *   3  the record submitted twice. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]

static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static void (*bpf_ringbuf_discard)(void *data, __u64 flags) = (void *)133;

struct event {
	__u32 len;
	__u16 proto;
	__u16 kind;
	__u32 ifindex;
	__u32 first;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

/* The frame's length, kept in 64 bits (a 32-bit difference of packet pointers is refused). */
static __always_inline __u64 frame_len(void *data, void *data_end)
{
	__u64 len = (__u64)data_end - (__u64)data;

	asm volatile("" : "+r"(len));
	return len;
}
