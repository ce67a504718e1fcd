/* Case 7 of helper_types.h: one program calling helpers its type may or may not use. */
#define CASE 7
#include "helper_types.h"
