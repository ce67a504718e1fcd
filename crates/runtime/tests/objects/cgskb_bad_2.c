#define CASE 2
#include "cgskb_bad.h"
