#define CASE 7
#include "sock_access.h"
