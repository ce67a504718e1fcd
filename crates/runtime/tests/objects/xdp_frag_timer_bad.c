/* The unsafe twin of xdp_frag_timer.c: the timer helpers get the nested struct's address
 * (offset 8 of the value) instead of its struct bpf_timer's (offset 16). */
#define BAD
#include "xdp_frag_timer.c"
