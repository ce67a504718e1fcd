/* Unsafe twin 3 of ringbuf_refs.c: the record submitted twice. */
#define CASE 3
#include "ringbuf_refs_bad.h"
