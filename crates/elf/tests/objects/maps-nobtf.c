/* maps.c built without -g (build.sh): its BTF-defined maps with no BTF to describe them. */
#include "maps.c"
