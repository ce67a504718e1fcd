/* ctxtypes.c built without -g (build.sh): the same programs with no BTF, so no context type
 * can be read from it. */
#include "ctxtypes.c"
