#define CASE 4
#include "sk_storage_bad.h"
