#define CASE 2
#include "sk_storage_bad.h"
