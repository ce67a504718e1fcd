/* The unsafe twin of xdp_list_walk.c: its end test lets index 64 through, so `val[64]` (past
 * the array: the next slot is outside the value) may be read (tests/may_goto_strict.rs:
 * rejected in Strict mode). */
#define UNSAFE
#include "xdp_list_walk.c"
