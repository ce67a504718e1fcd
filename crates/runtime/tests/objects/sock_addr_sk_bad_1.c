#define CASE 1
#include "sock_addr_sk_bad.h"
