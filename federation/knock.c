/* knock.c — the resident side of knocking: GET /v1/make_knock/{roomId}/{userId}
 * ?ver=… and PUT /v1/send_knock/{roomId}/{eventId}, which answers with the
 * room's stripped state (full PDUs, spec v1.16) so the knocker's server can
 * show the room to its user. */
#include "rooms_internal.h"

static int get_make_knock(hs_req *r, json_t **out, hs_err *err) {
    json_t *content = json_pack("{s:s}", "membership", "knock");
    int rc = fed_make_membership(r, "knock", content, true, out, err);
    json_decref(content);
    return rc;
}

static int put_send_knock(hs_req *r, json_t **out, hs_err *err) {
    room_event *ev;
    room_state_map *before;
    if (fed_send_membership(r, "knock", &ev, &before, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    json_t *st = c ? fed_stripped_state_pdus(c, before, err) : NULL;
    db_release(r->srv->db, c);
    room_event_free(ev);
    room_state_map_free(before);
    if (!st) return -1;
    *out = json_pack("{s:o}", "knock_room_state", st);
    return 200;
}

void fed_knock_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/make_knock/{roomId}/{userId}", get_make_knock,
             HS_FEDERATION);
    hs_route(rt, "PUT", "/_matrix/federation/v1/send_knock/{roomId}/{eventId}", put_send_knock,
             HS_FEDERATION);
}
