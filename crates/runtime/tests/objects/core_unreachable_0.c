/* The CO-RE "unreachable" marker, case 0 (core_unreachable.h; tests/core_unreachable.rs). */
#define CASE 0
#include "core_unreachable.h"
