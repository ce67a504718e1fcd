#define CASE 4
#include "sk_bad.h"
