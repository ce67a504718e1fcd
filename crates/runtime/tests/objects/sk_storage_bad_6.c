#define CASE 6
#include "sk_storage_bad.h"
