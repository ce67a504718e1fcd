/* Unsafe twin 1 of xdp_spin.c: a helper call (bpf_ktime_get_ns) while the lock is held. */
#define CASE 1
#include "xdp_spin_bad.h"
