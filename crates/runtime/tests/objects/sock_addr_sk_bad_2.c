#define CASE 2
#include "sock_addr_sk_bad.h"
