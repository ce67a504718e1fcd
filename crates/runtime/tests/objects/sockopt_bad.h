/* Programs the kernel refuses for their use of bpf_setsockopt (tests/sockopt.rs); each
 * sockopt_bad_N.c defines CASE and includes this body:
 *   1: a cgroup sock_create program calling it (the helper is not offered to cgroup socket
 *      programs);
 *   2: a sockops program passing a pointer to its stack where the context is due. */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*bpf_setsockopt)(void *bpf_socket, int level, int optname, void *optval, int optlen) = (void *)49;

#if CASE == 1
SEC("cgroup/sock_create")
int mark_all(struct bpf_sock *sk)
{
	int mark = 7;

	return bpf_setsockopt(sk, 1 /* SOL_SOCKET */, 36 /* SO_MARK */, &mark, sizeof(mark)) == 0;
}
#else
SEC("sockops")
int stack_as_socket(struct bpf_sock_ops *skops)
{
	int fake[64] = {}, mark = 7;

	fake[0] = skops->op;
	return bpf_setsockopt(fake, 1 /* SOL_SOCKET */, 36 /* SO_MARK */, &mark, sizeof(mark)) == 0;
}
#endif

char _license[] SEC("license") = "GPL";
