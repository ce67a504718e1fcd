#define CASE 2
#include "sock_access.h"
