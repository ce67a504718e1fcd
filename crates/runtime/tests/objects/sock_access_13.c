#define CASE 13
#include "sock_access.h"
