/* A socket filter in the classic style: legacy packet loads (LD_ABS, and LD_IND for the TCP
 * header after a variable-length IPv4 header) keep IPv4 TCP segments to port 80 whole (-1:
 * the whole packet) and drop everything else (0), fragments after the first included.       */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>

#define SEC(name) __attribute__((section(name), used))

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

SEC("socket")
int tcp_port_80(struct __sk_buff *skb)
{
	unsigned long long ihl;

	if (load_half(skb, 12) != ETH_P_IP)
		return 0;
	if (load_byte(skb, ETH_HLEN + 9) != IPPROTO_TCP)
		return 0;
	if (load_half(skb, ETH_HLEN + 6) & 0x1fff)
		return 0;
	ihl = (load_byte(skb, ETH_HLEN) & 0xf) * 4;
	if (load_half(skb, ETH_HLEN + ihl + 2) != 80)
		return 0;
	return -1;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
