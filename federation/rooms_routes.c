/* rooms_routes.c — the room endpoints of the Server-Server API, and the
 * hooks through which the Client-Server API reaches rooms of other servers. */
#include "rooms_internal.h"

void fed_rooms_routes(hs_router *rt) {
    fed_send_routes(rt);
    fed_state_routes(rt);
    fed_event_routes(rt);
    fed_backfill_routes(rt);
    fed_missing_events_routes(rt);
    fed_timestamp_routes(rt);
    fed_join_routes(rt);
    fed_leave_routes(rt);
    fed_knock_routes(rt);
    fed_invite_routes(rt);
    fed_third_party_invite_routes(rt);
    fed_directory_routes(rt);
    fed_install_client_hooks();
}
