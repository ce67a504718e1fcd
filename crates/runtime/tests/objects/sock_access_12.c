#define CASE 12
#include "sock_access.h"
