/* Unsafe twin 3 of xdp_spin.c: a second lock taken while the first is held. */
#define CASE 3
#include "xdp_spin_bad.h"
