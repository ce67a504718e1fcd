#define CASE 4
#include "cgskb_bad.h"
