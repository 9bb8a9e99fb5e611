/* timestamp.c — GET /_matrix/federation/v1/timestamp_to_event/{roomId}
 * ?ts=…&dir=f|b: the room's event closest to ts in that direction (forward:
 * the first at or after ts; backward: the last at or before), among the
 * events of its timeline (not outliers, rejected or soft-failed ones), for
 * servers in the room. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

static int get_timestamp_to_event(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt fwd =
        DB_STMT("SELECT event_id, origin_server_ts FROM events WHERE room_id = $1"
                " AND origin_server_ts >= $2::bigint AND NOT outlier AND NOT soft_failed"
                " AND rejected_reason IS NULL ORDER BY origin_server_ts, stream_ordering LIMIT 1");
    static db_stmt back = DB_STMT(
        "SELECT event_id, origin_server_ts FROM events WHERE room_id = $1"
        " AND origin_server_ts <= $2::bigint AND NOT outlier AND NOT soft_failed"
        " AND rejected_reason IS NULL ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 1");
    const char *room_id = r->params[0], *ts = hs_req_query(r, "ts"), *dir = hs_req_query(r, "dir");
    char *end = NULL;
    long long t = ts ? strtoll(ts, &end, 10) : 0;
    if (!ts || !dir) return hs_err_set(err, 400, "M_MISSING_PARAM", "ts and dir are required");
    if (!*ts || *end || t < 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "ts must be an integer");
    if (strcmp(dir, "f") && strcmp(dir, "b"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "dir must be f or b");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char tb[24];
    snprintf(tb, sizeof tb, "%lld", t);
    PGresult *res =
        fed_check_origin(c, room_id, r->origin, err) == 0
            ? db_run(c, dir[0] == 'f' ? &fwd : &back, 2, (const char *[]){room_id, tb}, err)
            : NULL;
    db_release(r->srv->db, c);
    if (!res) return -1;
    int rc = -1;
    if (PQntuples(res)) {
        *out = json_pack("{s:s, s:I}", "event_id", PQgetvalue(res, 0, 0), "origin_server_ts",
                         (json_int_t)atoll(PQgetvalue(res, 0, 1)));
        rc = 200;
    } else {
        hs_err_set(err, 404, "M_NOT_FOUND", "Unable to find event from %lld in %s direction", t,
                   dir[0] == 'f' ? "forward" : "backward");
    }
    PQclear(res);
    return rc;
}

void fed_timestamp_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/timestamp_to_event/{roomId}",
             get_timestamp_to_event, HS_FEDERATION);
}
