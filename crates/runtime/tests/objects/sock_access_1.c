#define CASE 1
#include "sock_access.h"
