#define CASE 0
#include "sock_access.h"
