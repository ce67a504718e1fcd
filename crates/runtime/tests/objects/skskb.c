/* sk_skb programs in the style of a socket-map proxy (tests/sk_skb.rs): the data is the
 * stream's, which the programs may read and rewrite.
 *
 * - sk_skb/stream_parser `parser`: each message is all the data there is (returns skb->len).
 * - sk_skb/stream_verdict `verdict`: builds the 5-tuple of the data's connection from the
 *   socket's fields (key: remote IPv4, local IPv4, remote port as the field holds it in its
 *   upper 2 bytes, local port as a number, protocol TCP), upper-cases a leading 'x' of the data
 *   in place, and redirects to the socket the `flows` hash holds for the tuple (to its
 *   receive queue); counts redirects in stats[0] and the data it passes on unredirected in
 *   stats[1], dropping data that starts with '!'.
 * - sk_skb `by_slot`: redirects (egress) to the socket at index cb[0] of the `slots` map.
 *
 *   clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -c skskb.c -o skskb.o */
#include <linux/bpf.h>
#include <linux/in.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_sk_redirect_map)(struct __sk_buff *skb, void *map, __u32 key, __u64 flags) = (void *)52;
static long (*bpf_sk_redirect_hash)(struct __sk_buff *skb, void *map, void *key, __u64 flags) = (void *)72;

struct tuple {
	__u32 remote_ip4;
	__u32 local_ip4;
	__u16 remote_port;
	__u16 local_port;
	__u8 protocol;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 64);
	__type(key, struct tuple);
	__type(value, __u64);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("sk_skb/stream_parser")
int parser(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_skb/stream_verdict")
int verdict(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;
	unsigned char *data_end = (void *)(long)skb->data_end;
	struct tuple key = {};

	if (data + 1 <= data_end) {
		if (data[0] == '!')
			return SK_DROP;
		if (data[0] == 'x')
			data[0] = 'X';
	}
	key.remote_ip4 = skb->remote_ip4;
	key.local_ip4 = skb->local_ip4;
	key.remote_port = skb->remote_port >> 16;
	key.local_port = skb->local_port;
	key.protocol = IPPROTO_TCP;
	if (bpf_sk_redirect_hash(skb, &flows, &key, BPF_F_INGRESS) == SK_PASS) {
		count(0);
		return SK_PASS;
	}
	count(1);
	return SK_PASS;
}

SEC("sk_skb")
int by_slot(struct __sk_buff *skb)
{
	return bpf_sk_redirect_map(skb, &slots, skb->cb[0], 0);
}

char _license[] SEC("license") = "GPL";
