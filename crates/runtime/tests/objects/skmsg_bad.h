/* The unsafe twins of skmsg.c (tests/sk_msg.rs), one per object: skmsg_bad_N.c defines CASE
 * and includes this file.
 *
 * - CASE 0 `unchecked`: reads and writes the message's first bytes without comparing with
 *   data_end.
 * - CASE 1 `stale`: checks the window, pushes 4 bytes, then writes through the pointer it had
 *   before the push (the push may move the message: every packet pointer is forgotten).
 * - CASE 2 `sk_write`: writes the mark of the message's socket through `msg->sk` (a socket's
 *   fields are read-only). */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_msg_push_data)(struct sk_msg_md *msg, __u32 start, __u32 len, __u64 flags) = (void *)90;

#if CASE == 0
SEC("sk_msg")
int unchecked(struct sk_msg_md *msg)
{
	unsigned char *data = (void *)(long)msg->data;

	if (data[0] == 'x')
		data[1] = 'X';
	return SK_PASS;
}
#elif CASE == 1
SEC("sk_msg")
int stale(struct sk_msg_md *msg)
{
	unsigned char *data = (void *)(long)msg->data;
	unsigned char *end = (void *)(long)msg->data_end;

	if (data + 2 > end)
		return SK_PASS;
	bpf_msg_push_data(msg, 0, 4, 0);
	data[1] = 'X';
	return SK_PASS;
}
#else
SEC("sk_msg")
int sk_write(struct sk_msg_md *msg)
{
	struct bpf_sock *sk = msg->sk;

	*(volatile __u32 *)&sk->mark = 1;
	return SK_PASS;
}
#endif

char _license[] SEC("license") = "GPL";
