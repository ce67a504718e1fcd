#define CASE 6
#include "sock_access.h"
