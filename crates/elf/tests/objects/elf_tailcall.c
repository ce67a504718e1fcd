/* iproute2's tail calls: a program array of `maps` with an id, and programs in sections named
 * "<id>/<key>" that tc puts at that key of that array when it loads the object. */
#include "bpf_helpers.h"

char LICENSE[] SEC("license") = "GPL";

#define JMP_ID 9

struct bpf_elf_map SEC("maps") jmp_table = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 8,
	.id = JMP_ID,
	.pinning = PIN_GLOBAL_NS,
};

/* [key] runs of the program at that key of jmp_table. */
struct bpf_elf_map SEC("maps") hits = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 8,
};

static __always_inline void hit(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &key);
	if (v)
		*v += 1;
}

SEC("9/1")
int cls_one(void *ctx)
{
	hit(1);
	return 10;
}

SEC("0x9/5")
int cls_five(void *ctx)
{
	hit(5);
	return 50;
}

/* The first byte of the input picks the key; an empty slot falls through. */
SEC("classifier")
int cls_entry(__u8 *ctx)
{
	bpf_tail_call(ctx, &jmp_table, ctx[0]);
	hit(0);
	return 0;
}
