/* Unsafe twin 2 of ringbuf_refs.c: a write to the record after submitting it. */
#define CASE 2
#include "ringbuf_refs_bad.h"
