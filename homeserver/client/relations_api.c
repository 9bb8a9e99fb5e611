/* relations_api.c — GET /rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]
 * (v1.3, recurse v1.10) and GET /rooms/{roomId}/threads (v1.4).
 *
 * Children and threads are found in event_relations / threads (filled as
 * events are persisted, relations_store.c) and served through
 * client_events_by_ids_for, so history visibility and bundled aggregations
 * apply as on every read path. Pagination tokens are /messages' ("t<pos>":
 * just after the event at stream position pos), so /messages and /sync
 * tokens work as the spec allows. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "events_read.h"
#include "homeserver/db/streams.h"
#include "relations.h"
#include "relations_internal.h"
#include "room_access.h"
#include "sync_token.h"

#define RELATIONS_DEFAULT_LIMIT 5   /* Synapse's defaults and caps */
#define RELATIONS_MAX_LIMIT 1000
#define THREADS_DEFAULT_LIMIT 5
#define THREADS_MAX_LIMIT 100
#define RECURSION_DEPTH 3           /* the spec: at least 3 levels */

/* An integer query parameter in [min, ∞), capped at max; dflt when absent. */
static int query_int(hs_req *r, const char *name, long dflt, long min, long max, long *out,
                     hs_err *err) {
    const char *s = hs_req_query(r, name);
    *out = dflt;
    if (!s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be an integer of at least %ld",
                          name, min);
    *out = v > max ? max : v;
    return 0;
}

static int query_token(hs_req *r, const char *name, long long *out, hs_err *err) {
    const char *s = hs_req_query(r, name);
    *out = s ? sync_token_events_pos(s) : -1;
    if (s && *out < 0) return hs_err_set(err, 400, "M_INVALID_PARAM", "Unknown pagination token");
    return 0;
}

/* ---- /relations ---- */

/* Direct children, or every descendant up to RECURSION_DEPTH levels; a
 * redacted or rejected child breaks the chain below it. */
#define DIRECT \
    "WITH t AS (SELECT r.event_id FROM event_relations r WHERE r.relates_to_id = $1 AND r.room_id = $2)"
#define RECURSIVE                                                                               \
    "WITH RECURSIVE d (event_id, depth) AS ("                                                  \
    " SELECT r.event_id, 1 FROM event_relations r JOIN events e ON e.event_id = r.event_id"     \
    "  WHERE r.relates_to_id = $1 AND r.room_id = $2 AND" REL_EVENT_OK("e")                     \
    " UNION SELECT r.event_id, d.depth + 1 FROM d JOIN event_relations r ON r.relates_to_id = d.event_id" \
    "  JOIN events e ON e.event_id = r.event_id WHERE d.depth < 3 AND r.room_id = $2 AND"       \
    REL_EVENT_OK("e") "), t AS (SELECT DISTINCT event_id FROM d)"
#define SELECT_CHILDREN(ORDER)                                                                  \
    " SELECT r.event_id, e.stream_ordering FROM t JOIN event_relations r USING (event_id)"       \
    " JOIN events e ON e.event_id = r.event_id"                                                  \
    " WHERE ($3::text IS NULL OR r.rel_type = $3) AND ($4::text IS NULL OR r.type = $4)"         \
    " AND e.stream_ordering > $5 AND e.stream_ordering <= $6 AND" REL_EVENT_OK("e")             \
    " ORDER BY e.stream_ordering " ORDER " LIMIT $7"

typedef struct rel_query {
    const char *room_id, *parent, *rel_type, *event_type;
    bool back, recurse;
    long long lo, hi; /* stream positions (lo, hi] */
    long limit;
} rel_query;

/* The IDs of one page of children, in the order served; *more and *edge
 * (the last position looked at) for the next token. */
static int page_ids(db_conn *c, const rel_query *q, char ***ids, int *n, bool *more,
                    long long *edge, hs_err *err) {
    static db_stmt st[4] = {DB_STMT(DIRECT SELECT_CHILDREN("DESC")),
                            DB_STMT(DIRECT SELECT_CHILDREN("ASC")),
                            DB_STMT(RECURSIVE SELECT_CHILDREN("DESC")),
                            DB_STMT(RECURSIVE SELECT_CHILDREN("ASC"))};
    char lo[24], hi[24], lim[24];
    snprintf(lo, sizeof lo, "%lld", q->lo);
    snprintf(hi, sizeof hi, "%lld", q->hi);
    snprintf(lim, sizeof lim, "%ld", q->limit + 1);
    const char *p[] = {q->parent, q->room_id, q->rel_type, q->event_type, lo, hi, lim};
    PGresult *r = db_run(c, &st[(q->recurse ? 2 : 0) + (q->back ? 0 : 1)], 7, p, err);
    if (!r) return -1;
    *n = PQntuples(r);
    *more = *n > q->limit;
    if (*more) *n = (int)q->limit;
    *ids = calloc((size_t)*n + 1, sizeof **ids);
    for (int i = 0; i < *n; i++) (*ids)[i] = strdup(PQgetvalue(r, i, 0));
    if (*n > 0) *edge = atoll(PQgetvalue(r, *n - 1, 1));
    PQclear(r);
    return 0;
}

/* The page's events as the user may see them, in the order of ids. */
static json_t *page_events(db_conn *c, const char *user_id, const char *device_id, char **ids,
                           int n, hs_err *err) {
    json_t *found = json_array(), *chunk = NULL;
    if (client_events_by_ids_for(c, user_id, device_id, (const char *const *)ids, (size_t)n, true,
                                 found, err) == 0) {
        json_t *by_id = json_object(), *ev;
        size_t i;
        json_array_foreach(found, i, ev)
            json_object_set(by_id, json_string_value(json_object_get(ev, "event_id")), ev);
        chunk = json_array();
        for (int k = 0; k < n; k++)
            if ((ev = json_object_get(by_id, ids[k]))) json_array_append(chunk, ev);
        json_decref(by_id);
    }
    json_decref(found);
    return chunk;
}

/* The parent must be in the room and visible to the user: 404 otherwise,
 * which is all the spec lets this endpoint say. */
static int parent_visible(db_conn *c, hs_req *r, hs_err *err) {
    json_t *arr = json_array();
    const char *id = r->params[1];
    int rc = client_events_by_ids_for(c, r->user_id, NULL, &id, 1, true, arr, err);
    const char *room = json_string_value(json_object_get(json_array_get(arr, 0), "room_id"));
    if (rc == 0 && (!room || strcmp(room, r->params[0]) != 0))
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
    json_decref(arr);
    return rc;
}

static int parse_relations_query(hs_req *r, rel_query *q, const char **recurse, hs_err *err) {
    const char *dir = hs_req_query(r, "dir");
    *recurse = hs_req_query(r, "recurse");
    if (dir && strcmp(dir, "b") && strcmp(dir, "f"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "dir must be 'b' or 'f'");
    if (*recurse && strcmp(*recurse, "true") && strcmp(*recurse, "false"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "recurse must be 'true' or 'false'");
    long long from, to;
    if (query_int(r, "limit", RELATIONS_DEFAULT_LIMIT, 0, RELATIONS_MAX_LIMIT, &q->limit, err) < 0 ||
        query_token(r, "from", &from, err) < 0 || query_token(r, "to", &to, err) < 0)
        return -1;
    q->room_id = r->params[0], q->parent = r->params[1];
    q->rel_type = r->n_params > 2 ? r->params[2] : NULL;
    q->event_type = r->n_params > 3 ? r->params[3] : NULL;
    q->back = !dir || dir[0] == 'b';
    q->recurse = *recurse && !strcmp(*recurse, "true");
    long long now = db_stream_current(DB_STREAM_EVENTS);
    if (q->back) q->hi = from >= 0 ? from : now, q->lo = to >= 0 ? to : 0;
    else q->lo = from >= 0 ? from : 0, q->hi = to >= 0 ? to : now;
    return 0;
}

static int get_relations(hs_req *r, json_t **out, hs_err *err) {
    rel_query q;
    const char *recurse;
    if (parse_relations_query(r, &q, &recurse, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char **ids = NULL;
    int n = 0, rc = -1;
    bool more = false;
    long long edge = 0;
    json_t *chunk = NULL;
    if (parent_visible(c, r, err) < 0) goto done;
    if (q.lo < q.hi && q.limit > 0 && page_ids(c, &q, &ids, &n, &more, &edge, err) < 0) goto done;
    if (!(chunk = page_events(c, r->user_id, r->device_id, ids, n, err))) goto done;
    *out = json_pack("{s:o}", "chunk", chunk);
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "t%lld", q.back ? edge - 1 : edge);
        json_object_set_new(*out, "next_batch", json_string(next));
    }
    const char *from = hs_req_query(r, "from");
    if (from) json_object_set_new(*out, "prev_batch", json_string(from));
    /* Mandatory once the client asked about recursion: 1 is direct children only. */
    if (recurse) json_object_set_new(*out, "recursion_depth", json_integer(q.recurse ? RECURSION_DEPTH : 1));
    rc = 200;
done:
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    db_release(r->srv->db, c);
    return rc;
}

/* ---- /threads ---- */

/* May the user look into the room: a member or a former member (what they
 * see is then up to history visibility), or anyone when it is world
 * readable. 403 otherwise, banned users included (the spec's examples). */
static int may_view_room(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    static db_stmt wr = DB_STMT(
        "SELECT 1 FROM current_state cs JOIN events e USING (event_id) WHERE cs.room_id = $1"
        " AND cs.type = 'm.room.history_visibility' AND cs.state_key = ''"
        " AND convert_from(e.json, 'UTF8')::json->'content'->>'history_visibility' = 'world_readable'");
    char m[16];
    if (!client_membership(c, room_id, user_id, m, sizeof m, err)) return -1;
    if (!strcmp(m, "join") || !strcmp(m, "leave")) return 0;
    PGresult *res = db_run(c, &wr, 1, (const char *[]){room_id}, err);
    if (!res) return -1;
    int ok = PQntuples(res);
    PQclear(res);
    return ok ? 0 : hs_err_set(err, 403, "M_FORBIDDEN", "You are not allowed to view this room.");
}

/* The roots of one page, newest activity first. */
static int thread_ids(db_conn *c, hs_req *r, bool participated, long long below, long limit,
                      char ***ids, int *n, bool *more, long long *edge, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT t.thread_id, t.latest_stream FROM threads t JOIN events e ON e.event_id = t.thread_id"
        " WHERE t.room_id = $1 AND t.latest_stream < $2 AND NOT e.outlier"
        " AND e.rejected_reason IS NULL AND NOT e.soft_failed"
        " AND (NOT $3::boolean OR e.sender = $4 OR EXISTS (SELECT 1 FROM event_relations r"
        "  JOIN events ce ON ce.event_id = r.event_id WHERE r.relates_to_id = t.thread_id"
        "  AND r.rel_type = 'm.thread' AND r.sender = $4 AND" REL_EVENT_OK("ce") "))"
        " ORDER BY t.latest_stream DESC LIMIT $5");
    char b[24], lim[24];
    snprintf(b, sizeof b, "%lld", below);
    snprintf(lim, sizeof lim, "%ld", limit + 1);
    const char *p[] = {r->params[0], b, participated ? "t" : "f", r->user_id, lim};
    PGresult *res = db_run(c, &q, 5, p, err);
    if (!res) return -1;
    *n = PQntuples(res);
    *more = *n > limit;
    if (*more) *n = (int)limit;
    *ids = calloc((size_t)*n + 1, sizeof **ids);
    for (int i = 0; i < *n; i++) (*ids)[i] = strdup(PQgetvalue(res, i, 0));
    if (*n > 0) *edge = atoll(PQgetvalue(res, *n - 1, 1));
    PQclear(res);
    return 0;
}

/* Roots sent by users the viewer ignores come redacted (spec), which for a
 * message event leaves an empty content. */
static void hide_ignored(db_conn *c, const char *user_id, json_t *chunk) {
    hs_err none = {0};
    json_t *list = client_account_data_get(c, user_id, NULL, "m.ignored_user_list", &none);
    json_t *ignored = json_object_get(list, "ignored_users"), *ev;
    size_t i;
    json_array_foreach(chunk, i, ev) {
        const char *sender = json_string_value(json_object_get(ev, "sender"));
        if (sender && json_is_object(ignored) && json_object_get(ignored, sender))
            json_object_set_new(ev, "content", json_object());
    }
    json_decref(list);
}

static int get_threads(hs_req *r, json_t **out, hs_err *err) {
    const char *include = hs_req_query(r, "include");
    if (include && strcmp(include, "all") && strcmp(include, "participated"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "include must be 'all' or 'participated'");
    long limit;
    long long from;
    if (query_int(r, "limit", THREADS_DEFAULT_LIMIT, 1, THREADS_MAX_LIMIT, &limit, err) < 0 ||
        query_token(r, "from", &from, err) < 0)
        return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char **ids = NULL;
    int n = 0, rc = -1;
    bool more = false;
    long long edge = 0;
    json_t *chunk;
    if (may_view_room(c, r->params[0], r->user_id, err) < 0 ||
        thread_ids(c, r, include && !strcmp(include, "participated"), from >= 0 ? from : LLONG_MAX,
                   limit, &ids, &n, &more, &edge, err) < 0 ||
        !(chunk = page_events(c, r->user_id, r->device_id, ids, n, err)))
        goto done;
    hide_ignored(c, r->user_id, chunk);
    *out = json_pack("{s:o}", "chunk", chunk);
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "t%lld", edge);
        json_object_set_new(*out, "next_batch", json_string(next));
    }
    rc = 200;
done:
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    db_release(r->srv->db, c);
    return rc;
}

void client_relations_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v1/rooms/{roomId}/relations/{eventId}", get_relations, HS_AUTH | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}", get_relations, HS_AUTH | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v1/rooms/{roomId}/relations/{eventId}/{relType}/{eventType}",
             get_relations, HS_AUTH | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v1/rooms/{roomId}/threads", get_threads, HS_AUTH);
}
