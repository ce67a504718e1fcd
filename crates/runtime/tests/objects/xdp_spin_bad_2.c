/* Unsafe twin 2 of xdp_spin.c: a return with the lock held. */
#define CASE 2
#include "xdp_spin_bad.h"
