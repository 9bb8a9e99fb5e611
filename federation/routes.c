/* routes.c — the list of federation areas. */
#include "federation.h"

void fed_routes(hs_router *rt) {
    fed_server_keys_routes(rt);
    fed_version_routes(rt);
}
