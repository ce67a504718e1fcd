/* btf_sections.c built without -g (build.sh): the same programs in the same free-named
 * sections with no BTF, which keep the plain-memory default. */
#include "btf_sections.c"
