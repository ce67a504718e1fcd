#define CASE 3
#include "sk_storage_bad.h"
