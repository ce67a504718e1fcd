#define CASE 3
#include "cgskb_bad.h"
