/* timestamp.c — GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event (v1.6).
 *
 * The event of the room closest to a time in one direction, among the
 * events this server has that the user may see (history visibility as on
 * every read path). Not done yet: asking other servers
 * (/_matrix/federation/v1/timestamp_to_event) when our copy of the room has
 * a gap there; until federation backfill exists we only hold what we have. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events_read.h"
#include "room_access.h"

#define CANDIDATES 50 /* events looked at before giving up on hidden history */

/* The user may look: a member or former member, or anyone when the room is
 * world readable (visibility then decides event by event). */
static int may_look(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    static db_stmt wr = DB_STMT(
        "SELECT 1 FROM current_state cs JOIN events e USING (event_id) WHERE cs.room_id = $1"
        " AND cs.type = 'm.room.history_visibility' AND cs.state_key = ''"
        " AND convert_from(e.json, 'UTF8')::json->'content'->>'history_visibility' = 'world_readable'");
    char m[16];
    if (!client_membership(c, room_id, user_id, m, sizeof m, err)) return -1;
    if (!strcmp(m, "join") || !strcmp(m, "leave") || !strcmp(m, "ban")) return 0;
    PGresult *r = db_run(c, &wr, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    int ok = PQntuples(r);
    PQclear(r);
    return ok ? 0 : hs_err_set(err, 403, "M_FORBIDDEN", "User %s not in room %s", user_id, room_id);
}

static int get_timestamp_to_event(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt fwd = DB_STMT(
        "SELECT event_id FROM events WHERE room_id = $1 AND origin_server_ts >= $2"
        " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
        " ORDER BY origin_server_ts, stream_ordering LIMIT $3");
    static db_stmt back = DB_STMT(
        "SELECT event_id FROM events WHERE room_id = $1 AND origin_server_ts <= $2"
        " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
        " ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT $3");
    const char *ts = hs_req_query(r, "ts"), *dir = hs_req_query(r, "dir");
    if (!ts) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing integer query parameter 'ts'");
    if (!dir) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing string query parameter 'dir'");
    char *end;
    long long t = strtoll(ts, &end, 10);
    if (!*ts || *end) return hs_err_set(err, 400, "M_INVALID_PARAM", "'ts' must be an integer");
    if (strcmp(dir, "f") && strcmp(dir, "b"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'dir' must be 'f' or 'b'");
    bool forward = dir[0] == 'f';
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    char tb[24], lim[16];
    snprintf(tb, sizeof tb, "%lld", t);
    snprintf(lim, sizeof lim, "%d", CANDIDATES);
    PGresult *res = may_look(c, r->params[0], r->user_id, err) < 0 ? NULL
                    : db_run(c, forward ? &fwd : &back, 3, (const char *[]){r->params[0], tb, lim}, err);
    json_t *seen = json_array();
    if (res) {
        int n = PQntuples(res);
        const char **ids = calloc((size_t)n + 1, sizeof *ids);
        for (int i = 0; i < n; i++) ids[i] = PQgetvalue(res, i, 0);
        if (client_events_by_ids_for(c, r->user_id, r->device_id, ids, (size_t)n, true, seen,
                                     err) == 0) {
            /* The closest candidate the user may see, in the query's order. */
            for (int i = 0; i < n && rc < 0; i++) {
                size_t k;
                json_t *ev;
                json_array_foreach(seen, k, ev)
                    if (!strcmp(json_string_value(json_object_get(ev, "event_id")), ids[i])) {
                        *out = json_pack("{s:s, s:O}", "event_id", ids[i], "origin_server_ts",
                                         json_object_get(ev, "origin_server_ts"));
                        rc = 200;
                        break;
                    }
            }
            if (rc < 0)
                hs_err_set(err, 404, "M_NOT_FOUND", "Unable to find event from %lld in %s direction",
                           t, forward ? "forward" : "backward");
        }
        free(ids);
        PQclear(res);
    }
    json_decref(seen);
    db_release(r->srv->db, c);
    return rc;
}

void client_timestamp_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v1/rooms/{roomId}/timestamp_to_event", get_timestamp_to_event,
             HS_AUTH);
}
