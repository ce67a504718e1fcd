#define CASE 4
#include "sock_access.h"
