#define CASE 2
#include "sk_bad.h"
