#define CASE 9
#include "sock_access.h"
