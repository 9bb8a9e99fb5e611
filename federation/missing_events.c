/* missing_events.c — POST /_matrix/federation/v1/get_missing_events/{roomId}:
 * a breadth-first walk of prev_events back from latest_events, stopping at
 * earliest_events, events below min_depth and the limit (default 10, at
 * most FED_MISSING_EVENTS_MAX as Synapse allows), oldest first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

typedef struct id_set {
    char **v;
    size_t n, cap;
} id_set;

static bool has(const id_set *s, const char *id) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], id)) return true;
    return false;
}

static void put(id_set *s, const char *id) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        char **more = realloc(s->v, cap * sizeof *more);
        if (!more) return;
        s->v = more, s->cap = cap;
    }
    s->v[s->n++] = strdup(id);
}

static void set_free(id_set *s) {
    for (size_t i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
}

/* The prev events of id that are events of room_id at or above min_depth. */
static PGresult *prevs(db_conn *c, const char *room_id, const char *id, const char *min_depth,
                       hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT x.prev_event_id FROM event_edges x JOIN events e ON e.event_id = x.prev_event_id"
        " WHERE x.event_id = $1 AND e.room_id = $2 AND e.depth >= $3::bigint"
        " AND e.rejected_reason IS NULL ORDER BY e.depth DESC, x.prev_event_id");
    return db_run(c, &q, 3, (const char *[]){id, room_id, min_depth}, err);
}

static int walk(db_conn *c, const char *room_id, const json_t *earliest, const json_t *latest,
                long long limit, long long min_depth, id_set *out, hs_err *err) {
    id_set seen = {0}, front = {0}, next = {0};
    char md[24];
    snprintf(md, sizeof md, "%lld", min_depth);
    size_t i;
    json_t *x;
    json_array_foreach(earliest, i, x) if (json_is_string(x)) put(&seen, json_string_value(x));
    json_array_foreach(latest, i, x) if (json_is_string(x) && !has(&seen, json_string_value(x)))
        put(&front, json_string_value(x));
    int rc = 0;
    while (rc == 0 && front.n && out->n < (size_t)limit) {
        for (size_t k = 0; rc == 0 && k < front.n && out->n < (size_t)limit; k++) {
            PGresult *r = prevs(c, room_id, front.v[k], md, err);
            if (!r) rc = -1;
            for (int j = 0; r && j < PQntuples(r) && out->n < (size_t)limit; j++) {
                const char *p = PQgetvalue(r, j, 0);
                if (has(&seen, p)) continue;
                put(&seen, p), put(&next, p), put(out, p);
            }
            PQclear(r);
        }
        set_free(&front);
        front = next;
        next = (id_set){0};
    }
    set_free(&seen), set_free(&front), set_free(&next);
    return rc;
}

/* An absent earliest_events or latest_events is taken as empty, as Synapse
 * takes it (SyTest's ACL tests send {}); anything else must be an array. */
static bool array_or_absent(const json_t *v) { return !v || json_is_array(v); }

static int check_body(const json_t *body, hs_err *err) {
    const json_t *lim = json_object_get(body, "limit"), *md = json_object_get(body, "min_depth");
    if (!array_or_absent(json_object_get(body, "earliest_events")) ||
        !array_or_absent(json_object_get(body, "latest_events")))
        return hs_err_set(err, 400, "M_BAD_JSON",
                          "earliest_events and latest_events must be arrays");
    if ((lim && !json_is_integer(lim)) || (md && !json_is_integer(md)))
        return hs_err_set(err, 400, "M_BAD_JSON", "limit and min_depth must be integers");
    return 0;
}

static int post_missing(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0];
    const json_t *earliest = json_object_get(r->json, "earliest_events");
    const json_t *latest = json_object_get(r->json, "latest_events");
    const json_t *lim = json_object_get(r->json, "limit"),
                 *md = json_object_get(r->json, "min_depth");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    id_set found = {0};
    json_t *events = json_array();
    int rc = -1;
    long long limit = lim && json_is_integer(lim) ? json_integer_value(lim) : 10;
    if (limit > FED_MISSING_EVENTS_MAX) limit = FED_MISSING_EVENTS_MAX;
    if (limit < 0) limit = 0;
    /* Who asks first (room, membership, ACL), then what (Synapse's order:
     * a denied server learns nothing from the answer's kind). */
    if (fed_check_origin(c, room_id, r->origin, err) == 0 && check_body(r->json, err) == 0 &&
        walk(c, room_id, earliest, latest, limit, md ? json_integer_value(md) : 0, &found, err) ==
            0) {
        /* Found newest first: reversed, they come roughly in chronological order. */
        for (size_t a = 0, b = found.n ? found.n - 1 : 0; a < b; a++, b--) {
            char *t = found.v[a];
            found.v[a] = found.v[b], found.v[b] = t;
        }
        if (fed_pdus_for_server(c, r->origin, (const char *const *)found.v, found.n, false, events,
                                err) == 0)
            rc = 200;
    }
    db_release(r->srv->db, c);
    set_free(&found);
    if (rc == 200) *out = json_pack("{s:O}", "events", events);
    json_decref(events);
    return rc;
}

void fed_missing_events_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/federation/v1/get_missing_events/{roomId}", post_missing,
             HS_FEDERATION);
}
