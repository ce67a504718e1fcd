/* bpf_get_socket_cookie from one program type: see sock_cookie_one.h. */
#define CASE 1
#include "sock_cookie_one.h"
