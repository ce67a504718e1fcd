#define CASE 1
#include "cgskb_bad.h"
