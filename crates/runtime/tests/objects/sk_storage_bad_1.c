#define CASE 1
#include "sk_storage_bad.h"
