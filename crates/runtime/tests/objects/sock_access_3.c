#define CASE 3
#include "sock_access.h"
