/* The unsafe twin of xdp_tlv_walk.c: the record's length byte is read before the check that
 * covers it (tests/may_goto_strict.rs: rejected in Strict mode). */
#define UNSAFE
#include "xdp_tlv_walk.c"
