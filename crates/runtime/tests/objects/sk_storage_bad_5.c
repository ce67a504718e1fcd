#define CASE 5
#include "sk_storage_bad.h"
