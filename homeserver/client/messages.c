/* messages.c — GET /rooms/{roomId}/messages and /context/{eventId}.
 *
 * Pagination tokens are stream positions ("t<pos>": the point just after
 * the event at pos); /sync's tokens are accepted too. A user sees the room up
 * to now while joined, up to their leave otherwise, and within that only
 * what the room's history visibility lets them see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events_read.h"
#include "homeserver/db/streams.h"
#include "sync_token.h"

#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000

/* The highest position the user may read: now while joined, their last
 * membership event otherwise (-1: never in the room). */
static long long read_horizon(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.membership, e.stream_ordering FROM current_state cs JOIN events e USING (event_id)"
        " WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.state_key = $2");
    static db_stmt wr = DB_STMT(
        "SELECT 1 FROM current_state cs JOIN events e USING (event_id) WHERE cs.room_id = $1"
        " AND cs.type = 'm.room.history_visibility' AND convert_from(e.json, 'UTF8')::json"
        "->'content'->>'history_visibility' = 'world_readable'");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return -2;
    long long h = -1;
    if (PQntuples(r)) {
        const char *m = PQgetvalue(r, 0, 0);
        if (!strcmp(m, "join")) h = db_stream_current(DB_STREAM_EVENTS);
        else if (strcmp(m, "invite") && strcmp(m, "knock")) h = atoll(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    if (h < 0) { /* peeking into a world-readable room */
        PGresult *w = db_run(c, &wr, 1, (const char *[]){room_id}, err);
        if (!w) return -2;
        if (PQntuples(w)) h = db_stream_current(DB_STREAM_EVENTS);
        PQclear(w);
    }
    if (h < 0) hs_err_set(err, 403, "M_FORBIDDEN", "User %s not in room %s", user_id, room_id);
    return h;
}

static int parse_limit(hs_req *r, int *limit, hs_err *err) {
    const char *l = hs_req_query(r, "limit");
    *limit = DEFAULT_LIMIT;
    if (!l) return 0;
    char *end;
    long v = strtol(l, &end, 10);
    if (*end || end == l || v < 0) return hs_err_set(err, 400, "M_INVALID_PARAM", "bad limit");
    *limit = v > MAX_LIMIT ? MAX_LIMIT : (int)v;
    return 0;
}

static int get_messages(hs_req *r, json_t **out, hs_err *err) {
    const char *dir = hs_req_query(r, "dir"), *from = hs_req_query(r, "from"),
               *to = hs_req_query(r, "to");
    int limit;
    if (!dir || (strcmp(dir, "b") && strcmp(dir, "f")))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "dir must be 'b' or 'f'");
    if (parse_limit(r, &limit, err) < 0) return -1;
    bool back = dir[0] == 'b';
    long long f = from ? sync_token_events_pos(from) : -1, t = to ? sync_token_events_pos(to) : -1;
    if ((from && f < 0) || (to && t < 0))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid pagination token");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    long long horizon = read_horizon(c, r->params[0], r->user_id, err);
    int rc = -1;
    if (horizon < 0) goto done;
    if (!from) f = back ? horizon : 0;
    long long lo, hi;
    if (back) hi = f < horizon ? f : horizon, lo = t >= 0 ? t : 0;
    else lo = f, hi = t >= 0 && t < horizon ? t : horizon;
    json_t *chunk = json_array();
    bool more = false;
    long long edge = back ? hi : lo;
    if (lo < hi && client_room_events_for(c, r->user_id, r->params[0], lo, hi, limit, back, true,
                                          chunk, &more, &edge, err) < 0) {
        json_decref(chunk);
        goto done;
    }
    /* /messages lists dir=b newest first. */
    if (back) {
        json_t *rev = json_array();
        for (size_t i = json_array_size(chunk); i > 0; i--) json_array_append(rev, json_array_get(chunk, i - 1));
        json_decref(chunk);
        chunk = rev;
    }
    char start[32], end[32];
    snprintf(start, sizeof start, "t%lld", back ? hi : lo);
    snprintf(end, sizeof end, "t%lld", back ? edge - 1 : edge);
    *out = json_pack("{s:o, s:s}", "chunk", chunk, "start", start);
    if (more) json_object_set_new(*out, "end", json_string(end));
    rc = 200;
done:
    db_release(r->srv->db, c);
    return rc;
}

/* Position and room of an event, for /context. */
static long long event_pos(db_conn *c, const char *room_id, const char *event_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT stream_ordering FROM events WHERE event_id = $1 AND room_id = $2"
        " AND stream_ordering IS NOT NULL AND rejected_reason IS NULL");
    PGresult *r = db_run(c, &q, 2, (const char *[]){event_id, room_id}, err);
    if (!r) return -2;
    long long p = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    if (p < 0) hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
    return p;
}

static int get_context(hs_req *r, json_t **out, hs_err *err) {
    int limit;
    if (parse_limit(r, &limit, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    json_t *mid = json_array(), *before = json_array(), *after = json_array();
    long long horizon = read_horizon(c, r->params[0], r->user_id, err);
    long long pos = horizon < 0 ? -1 : event_pos(c, r->params[0], r->params[1], err);
    if (pos < 0) goto done;
    bool more;
    long long e1 = pos, e2 = pos, ignored;
    /* The event itself, through the visibility filter like its neighbours. */
    if (pos > horizon ||
        client_room_events_for(c, r->user_id, r->params[0], pos - 1, pos, 1, false, true, mid,
                               &more, &ignored, err) < 0)
        goto done;
    if (json_array_size(mid) == 0) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
        goto done;
    }
    int nb = limit / 2, na = limit - nb;
    if (client_room_events_for(c, r->user_id, r->params[0], 0, pos - 1, nb, true, true, before,
                               &more, &e1, err) < 0 ||
        client_room_events_for(c, r->user_id, r->params[0], pos, horizon, na, false, true, after,
                               &more, &e2, err) < 0)
        goto done;
    json_t *rev = json_array();
    for (size_t i = json_array_size(before); i > 0; i--) json_array_append(rev, json_array_get(before, i - 1));
    char start[32], end[32];
    snprintf(start, sizeof start, "t%lld", e1 - 1);
    snprintf(end, sizeof end, "t%lld", e2);
    *out = json_pack("{s:O, s:o, s:O, s:s, s:s, s:[]}", "event", json_array_get(mid, 0),
                     "events_before", rev, "events_after", after, "start", start, "end", end,
                     "state");
    rc = 200;
done:
    json_decref(mid), json_decref(before), json_decref(after);
    db_release(r->srv->db, c);
    return rc;
}

void client_messages_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/messages", get_messages, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/context/{eventId}", get_context, HS_AUTH | HS_R0);
}
