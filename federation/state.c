/* state.c — GET /_matrix/federation/v1/state/{roomId} and /state_ids/{roomId}
 * ?event_id=: the room's state before an event (not counting the event
 * itself), with the auth chain of that state, for servers in the room. */
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

typedef struct state_answer {
    char **state, **chain;
    size_t n_state, n_chain;
} state_answer;

static void answer_free(state_answer *a) {
    room_store_free_ids(a->state, a->n_state);
    room_store_free_ids(a->chain, a->n_chain);
}

/* The IDs of the state before event_id of room_id, and their auth chain.
 * A rejected event has no state of its own to give (Synapse: 404). */
static int state_before(db_conn *c, const char *room_id, const char *event_id, state_answer *a,
                        hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT 1 FROM events WHERE event_id = $1 AND room_id = $2 AND NOT outlier"
                " AND rejected_reason IS NULL");
    PGresult *r = db_run(c, &q, 2, (const char *[]){event_id, room_id}, err);
    if (!r) return -1;
    int found = PQntuples(r);
    PQclear(r);
    if (!found) return hs_err_set(err, 404, "M_NOT_FOUND", "Could not find event %s", event_id);
    room_state_map *st = room_state_map_new();
    if (!st || room_store_state_at(c, event_id, false, st, err) < 0)
        return room_state_map_free(st), -1;
    a->n_state = room_state_map_count(st);
    a->state = calloc(a->n_state + 1, sizeof *a->state);
    size_t it = 0, i = 0;
    const char *id;
    while (a->state && room_state_map_next(st, &it, NULL, NULL, &id)) a->state[i++] = strdup(id);
    room_state_map_free(st);
    if (!a->state) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    return fed_auth_chain(c, room_id, (const char *const *)a->state, a->n_state, &a->chain,
                          &a->n_chain, err);
}

/* How long a request for the state at an event waits while our state of
 * the room is partial (a faster join still resyncing). */
#define STATE_PARTIAL_WAIT_MS 10000L

static int get_state_common(hs_req *r, bool ids_only, json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *event_id = hs_req_query(r, "event_id");
    if (!event_id) return hs_err_set(err, 400, "M_MISSING_PARAM", "event_id is required");
    /* While the state is partial, the state at any of the room's events is
     * not known in full, and the asking server would take what we have for
     * all of it: wait for the resync, as Synapse blocks, and refuse if it
     * does not come in time (403, as Complement's partial-join tests allow). */
    int full = fed_partial_state_await(r->srv, room_id, STATE_PARTIAL_WAIT_MS);
    if (full < 0) return hs_err_set(err, 500, "M_UNKNOWN", "cannot read the room");
    if (full == 0)
        return hs_err_set(err, 403, "M_FORBIDDEN",
                          "This server does not yet hold the full state of %s", room_id);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    state_answer a = {0};
    int rc = fed_check_origin(c, room_id, r->origin, err) == 0 &&
                     state_before(c, room_id, event_id, &a, err) == 0
                 ? 200
                 : -1;
    if (rc == 200 && ids_only) {
        *out = json_pack("{s:o, s:o}", "pdu_ids",
                         fed_str_array((const char *const *)a.state, a.n_state), "auth_chain_ids",
                         fed_str_array((const char *const *)a.chain, a.n_chain));
    } else if (rc == 200) {
        json_t *pdus = json_array(), *chain = json_array();
        if (fed_pdus_for_server(c, NULL, (const char *const *)a.state, a.n_state, false, pdus,
                                err) < 0 ||
            fed_pdus_for_server(c, NULL, (const char *const *)a.chain, a.n_chain, false, chain,
                                err) < 0) {
            json_decref(pdus), json_decref(chain);
            rc = -1;
        } else {
            *out = json_pack("{s:o, s:o}", "pdus", pdus, "auth_chain", chain);
        }
    }
    answer_free(&a);
    db_release(r->srv->db, c);
    return rc;
}

static int get_state(hs_req *r, json_t **out, hs_err *err) {
    return get_state_common(r, false, out, err);
}
static int get_state_ids(hs_req *r, json_t **out, hs_err *err) {
    return get_state_common(r, true, out, err);
}

void fed_state_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/state/{roomId}", get_state, HS_FEDERATION);
    hs_route(rt, "GET", "/_matrix/federation/v1/state_ids/{roomId}", get_state_ids, HS_FEDERATION);
}
