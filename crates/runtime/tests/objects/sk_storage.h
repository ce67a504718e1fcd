/* Declarations shared by the socket-storage fixtures (sk_storage.c, sk_storage_bad_N.c). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_sk_storage_get)(void *map, void *sk, void *value, __u64 flags) = (void *)107;
static long (*bpf_sk_storage_delete)(void *map, void *sk) = (void *)108;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static struct bpf_sock *(*bpf_skc_lookup_tcp)(void *ctx, struct bpf_sock_tuple *tuple, __u32 tuple_size, __u64 netns, __u64 flags) = (void *)99;
static long (*bpf_sk_release)(void *sock) = (void *)86;

/* What a socket's traffic adds up to. */
struct sk_stats {
	__u64 packets;
	__u64 bytes;
	__u32 first_mark;
	__u32 tag;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sk_stats);
} sk_stats SEC(".maps");
