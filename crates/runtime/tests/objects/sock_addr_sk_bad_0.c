#define CASE 0
#include "sock_addr_sk_bad.h"
