/* backfill.c — GET /_matrix/federation/v1/backfill/{roomId}?v=…&limit=…:
 * the events before (and including) the given ones, newest first, walking
 * prev_events by depth as Synapse's get_backfill_events does, at most
 * FED_BACKFILL_MAX. Only events in the room's timeline (no outliers, no
 * rejected events) are walked; what history visibility hides from the
 * asking server goes out redacted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

typedef struct bf_item {
    char *id;
    long long depth, order;
} bf_item;

typedef struct bf_walk {
    bf_item *queue;
    size_t n, cap;
    char **seen;
    size_t n_seen, cap_seen;
} bf_walk;

static bool seen(bf_walk *w, const char *id) {
    for (size_t i = 0; i < w->n_seen; i++)
        if (!strcmp(w->seen[i], id)) return true;
    if (w->n_seen == w->cap_seen) {
        size_t cap = w->cap_seen ? w->cap_seen * 2 : 64;
        char **more = realloc(w->seen, cap * sizeof *more);
        if (!more) return true;
        w->seen = more, w->cap_seen = cap;
    }
    w->seen[w->n_seen++] = strdup(id);
    return false;
}

/* Queue the timeline events among ids of room_id not seen yet. */
static int push_events(db_conn *c, bf_walk *w, const char *room_id, const char *const *ids,
                       size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id, depth, stream_ordering FROM events WHERE event_id = ANY($1::text[])"
        " AND room_id = $2 AND NOT outlier AND rejected_reason IS NULL");
    if (!n) return 0;
    char *arr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 2, (const char *[]){arr, room_id}, err);
    free(arr);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        if (seen(w, PQgetvalue(r, i, 0))) continue;
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            bf_item *more = realloc(w->queue, cap * sizeof *more);
            if (!more) break;
            w->queue = more, w->cap = cap;
        }
        w->queue[w->n++] = (bf_item){strdup(PQgetvalue(r, i, 0)), atoll(PQgetvalue(r, i, 1)),
                                     atoll(PQgetvalue(r, i, 2))};
    }
    PQclear(r);
    return 0;
}

/* The deepest queued event (latest stream position among equals). */
static bf_item pop(bf_walk *w) {
    size_t best = 0;
    for (size_t i = 1; i < w->n; i++)
        if (w->queue[i].depth > w->queue[best].depth ||
            (w->queue[i].depth == w->queue[best].depth && w->queue[i].order > w->queue[best].order))
            best = i;
    bf_item it = w->queue[best];
    w->queue[best] = w->queue[--w->n];
    return it;
}

static int prevs_of(db_conn *c, bf_walk *w, const char *room_id, const char *id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT prev_event_id FROM event_edges WHERE event_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){id}, err);
    if (!r) return -1;
    size_t n = (size_t)PQntuples(r);
    const char **ids = calloc(n + 1, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) ids[i] = PQgetvalue(r, (int)i, 0);
    int rc = ids ? push_events(c, w, room_id, ids, n, err) : -1;
    free(ids);
    PQclear(r);
    return rc;
}

static int walk(db_conn *c, const char *room_id, char **start, size_t n_start, long limit,
                char ***out, size_t *n_out, hs_err *err) {
    bf_walk w = {0};
    *out = calloc((size_t)limit + 1, sizeof **out);
    *n_out = 0;
    int rc = *out ? push_events(c, &w, room_id, (const char *const *)start, n_start, err) : -1;
    while (rc == 0 && w.n && *n_out < (size_t)limit) {
        bf_item it = pop(&w);
        (*out)[(*n_out)++] = it.id;
        rc = prevs_of(c, &w, room_id, it.id, err);
    }
    for (size_t i = 0; i < w.n; i++) free(w.queue[i].id);
    for (size_t i = 0; i < w.n_seen; i++) free(w.seen[i]);
    free(w.queue), free(w.seen);
    return rc;
}

static int get_backfill(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *lim = hs_req_query(r, "limit");
    char *v[FED_BACKFILL_MAX];
    size_t n_v = fed_query_values(r->uri, "v", v, FED_BACKFILL_MAX);
    char *end = NULL;
    long limit = lim ? strtol(lim, &end, 10) : 0;
    int rc = -1;
    if (!n_v || !lim) hs_err_set(err, 400, "M_MISSING_PARAM", "v and limit are required");
    else if (!*lim || *end || limit < 0)
        hs_err_set(err, 400, "M_INVALID_PARAM", "limit must be an integer");
    else rc = 0;
    if (limit > FED_BACKFILL_MAX) limit = FED_BACKFILL_MAX;
    db_conn *c = rc == 0 ? db_acquire(r->srv->db, err) : NULL;
    char **ids = NULL;
    size_t n = 0;
    json_t *pdus = json_array();
    if (!c || fed_check_origin(c, room_id, r->origin, err) < 0 ||
        walk(c, room_id, v, n_v, limit, &ids, &n, err) < 0 ||
        fed_pdus_for_server(c, r->origin, (const char *const *)ids, n, true, pdus, err) < 0)
        rc = -1;
    else rc = 200, *out = fed_transaction(r->srv, json_incref(pdus));
    db_release(r->srv->db, c);
    json_decref(pdus);
    if (ids) room_store_free_ids(ids, n);
    fed_strv_free(v, n_v);
    return rc;
}

void fed_backfill_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/backfill/{roomId}", get_backfill, HS_FEDERATION);
}
