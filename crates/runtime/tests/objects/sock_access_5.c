#define CASE 5
#include "sock_access.h"
