#define CASE 1
#include "sk_bad.h"
