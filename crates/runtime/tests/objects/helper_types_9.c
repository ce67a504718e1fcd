/* Case 9 of helper_types.h: one program calling helpers its type may or may not use. */
#define CASE 9
#include "helper_types.h"
