/* Unsafe twin 1 of ringbuf_refs.c: an early exit that keeps the record (never submitted or discarded). */
#define CASE 1
#include "ringbuf_refs_bad.h"
