#define CASE 14
#include "sock_access.h"
