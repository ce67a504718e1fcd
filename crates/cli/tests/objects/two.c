/* Two programs in one section and one in another, for choosing a program by name. */
typedef unsigned int __u32;

#define SEC(name) __attribute__((section(name), used))

struct xdp_md {
	__u32 data;
	__u32 data_end;
};

char LICENSE[] SEC("license") = "Dual MIT/GPL";

SEC("socket")
int first(void *mem)
{
	return 11;
}

SEC("socket")
int second(void *mem)
{
	return 22;
}

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return 2;
}
