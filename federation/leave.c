/* leave.c — the resident side of leaving a room we host for a server that
 * is not in it (rejecting an invite, retracting a knock):
 * GET /v1/make_leave/{roomId}/{userId} and PUT /v2/send_leave/{roomId}/{eventId}
 * (and the deprecated v1, answered [200, {}]). */
#include "rooms_internal.h"

static int get_make_leave(hs_req *r, json_t **out, hs_err *err) {
    json_t *content = json_pack("{s:s}", "membership", "leave");
    int rc = fed_make_membership(r, "leave", content, false, out, err);
    json_decref(content);
    return rc;
}

static int put_send_leave(hs_req *r, json_t **out, hs_err *err) {
    room_event *ev;
    room_state_map *before;
    if (fed_send_membership(r, "leave", &ev, &before, err) < 0) return -1;
    room_event_free(ev);
    room_state_map_free(before);
    *out = json_object();
    return 200;
}

/* v1 (deprecated, still in the spec): the same, answered [200, {}]. */
static int put_send_leave_v1(hs_req *r, json_t **out, hs_err *err) {
    json_t *body = NULL;
    if (put_send_leave(r, &body, err) < 0) return -1;
    *out = fed_v1_answer(body);
    return 200;
}

void fed_leave_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/make_leave/{roomId}/{userId}", get_make_leave,
             HS_FEDERATION);
    hs_route(rt, "PUT", "/_matrix/federation/v1/send_leave/{roomId}/{eventId}", put_send_leave_v1,
             HS_FEDERATION);
    hs_route(rt, "PUT", "/_matrix/federation/v2/send_leave/{roomId}/{eventId}", put_send_leave,
             HS_FEDERATION);
}
