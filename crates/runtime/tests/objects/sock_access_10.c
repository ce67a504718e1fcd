#define CASE 10
#include "sock_access.h"
