/* event.c — GET /_matrix/federation/v1/event/{eventId} (one event, as a
 * transaction of one PDU) and /event_auth/{roomId}/{eventId} (its auth
 * chain), for servers in the event's room. An event history visibility
 * hides from the asking server goes out redacted; rejected events are not
 * served (Synapse). */
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

/* The room of a stored, accepted event; NULL with 404 otherwise. */
static char *room_of(db_conn *c, const char *event_id, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT room_id FROM events WHERE event_id = $1 AND rejected_reason IS NULL");
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id}, err);
    if (!r) return NULL;
    char *room = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    if (!room) hs_err_set(err, 404, "M_NOT_FOUND", "Could not find event %s", event_id);
    return room;
}

static int get_event(hs_req *r, json_t **out, hs_err *err) {
    const char *event_id = r->params[0];
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char *room = room_of(c, event_id, err);
    json_t *pdus = json_array();
    int rc = room && fed_check_origin(c, room, r->origin, err) == 0 &&
                     fed_pdus_for_server(c, r->origin, &event_id, 1, false, pdus, err) == 0
                 ? 200
                 : -1;
    db_release(r->srv->db, c);
    free(room);
    if (rc == 200 && json_array_size(pdus) == 0)
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "Could not find event %s", event_id);
    if (rc == 200) *out = fed_transaction(r->srv, json_incref(pdus));
    json_decref(pdus);
    return rc;
}

static int get_event_auth(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *event_id = r->params[1];
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char *room = NULL, **chain = NULL;
    size_t n = 0;
    int rc = -1;
    if (fed_check_origin(c, room_id, r->origin, err) == 0 && (room = room_of(c, event_id, err))) {
        if (strcmp(room, room_id) != 0)
            hs_err_set(err, 404, "M_NOT_FOUND", "Event %s is not in room %s", event_id, room_id);
        else if (fed_auth_chain(c, room_id, &event_id, 1, &chain, &n, err) == 0) rc = 200;
    }
    json_t *pdus = json_array();
    if (rc == 200 &&
        fed_pdus_for_server(c, NULL, (const char *const *)chain, n, false, pdus, err) < 0)
        rc = -1;
    db_release(r->srv->db, c);
    if (rc == 200) *out = json_pack("{s:O}", "auth_chain", pdus);
    json_decref(pdus);
    if (chain) room_store_free_ids(chain, n);
    free(room);
    return rc;
}

void fed_event_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/event/{eventId}", get_event, HS_FEDERATION);
    hs_route(rt, "GET", "/_matrix/federation/v1/event_auth/{roomId}/{eventId}", get_event_auth,
             HS_FEDERATION);
}
