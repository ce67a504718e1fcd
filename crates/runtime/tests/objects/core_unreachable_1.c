/* The CO-RE "unreachable" marker, case 1 (core_unreachable.h; tests/core_unreachable.rs). */
#define CASE 1
#include "core_unreachable.h"
