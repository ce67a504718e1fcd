#define CASE 11
#include "sock_access.h"
