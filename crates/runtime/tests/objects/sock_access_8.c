#define CASE 8
#include "sock_access.h"
