#define CASE 3
#include "sk_bad.h"
