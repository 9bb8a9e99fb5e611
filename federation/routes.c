/* routes.c — the list of federation areas, and the X-Matrix hook into the
 * HTTP layer. */
#include "federation.h"
#include "rooms_internal.h"
#include "transport_internal.h"

/* X-Matrix, and a signed request shows its server is up: the sender stops
 * backing off from it. */
static int authenticate(hs_req *r, hs_err *err) {
    if (fed_authenticate_request(r, err) < 0) return -1;
    if (r->origin) fed_sender_remote_up(r->origin);
    return 0;
}

void fed_routes(hs_router *rt) {
    hs_http_set_federation_auth(authenticate);
    fed_outbound_install();
    fed_server_keys_routes(rt);
    fed_key_query_routes(rt);
    fed_version_routes(rt);
    fed_admin_routes(rt);
    fed_rooms_routes(rt);
    fed_query_routes(rt);
    fed_user_keys_routes(rt);
}

void fed_shutdown(void) {
    fed_partial_state_stop(); /* first: it stops the HTTP thread until it is gone */
    fed_sender_stop(); /* before the HTTP thread: its workers use it */
    fed_http_shutdown();
    fed_discovery_reset();
}
