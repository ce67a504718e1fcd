#define CASE 2
#include "sockopt_bad.h"
