#define CASE 1
#include "sockopt_bad.h"
