/* routes.c — the list of federation areas, and the X-Matrix hook into the
 * HTTP layer. */
#include "federation.h"
#include "rooms_internal.h"
#include "transport_internal.h"

void fed_routes(hs_router *rt) {
    hs_http_set_federation_auth(fed_authenticate_request);
    fed_server_keys_routes(rt);
    fed_key_query_routes(rt);
    fed_version_routes(rt);
    fed_admin_routes(rt);
    fed_rooms_routes(rt);
}

void fed_shutdown(void) {
    fed_http_shutdown();
    fed_discovery_reset();
}
