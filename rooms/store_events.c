/* store_events.c — persisting events with their state, and reading them back.
 *
 * One event's persistence: its row (canonical JSON without "unsigned"), its
 * DAG edges, the state groups before and after it, then — for an accepted,
 * non-soft-failed event — the forward extremities and the current state,
 * resolved over the extremities when the DAG forks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "store.h"
#include "state_lookup.h"
#include "store_internal.h"

static const char *const no_unsigned[] = {"unsigned", NULL};

/* Stored state: 0 unknown, 1 outlier, 2 full (with its groups). */
static int stored_kind(db_conn *c, const char *event_id, long long *after, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT outlier, state_after FROM events WHERE event_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id}, err);
    if (!r) return -1;
    int kind = 0;
    if (PQntuples(r) == 1) {
        kind = PQgetvalue(r, 0, 0)[0] == 't' ? 1 : 2;
        if (after) *after = PQgetisnull(r, 0, 1) ? 0 : atoll(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return kind;
}

int room_store_claim_room(db_conn *c, const room_event *create, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO rooms (room_id, room_version, created_ts) VALUES ($1, $2, $3)"
        " ON CONFLICT (room_id) DO NOTHING");
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", create->origin_server_ts);
    long n = db_exec(c, &ins, 3, (const char *[]){create->room_id, create->ver->id, ts}, err);
    return n < 0 ? -1 : n > 0;
}

static int ensure_room(db_conn *c, const room_event *ev, hs_err *err) {
    if (strcmp(ev->type, "m.room.create") != 0 || !ev->state_key || *ev->state_key) return 0;
    return room_store_claim_room(c, ev, err) < 0 ? -1 : 0;
}

/* The state group before a non-outlier event. */
static long long group_before(db_conn *c, const room_persist_item *it, hs_err *err) {
    const room_event *ev = it->ev;
    long long parent = 0;
    if (it->state_before_group > 0) return it->state_before_group;
    for (size_t i = 0; i < ev->n_prev && parent == 0; i++)
        if (stored_kind(c, ev->prev_events[i], &parent, err) < 0) return -1;
    if (it->state_before) {
        room_state_map *ps = parent ? room_state_map_new() : NULL;
        long long g = -1;
        if (!parent || (ps && room_state_group_load(c, parent, ps, err) == 0))
            g = room_state_group_store(c, ev->room_id, parent, ps, it->state_before, err);
        room_state_map_free(ps);
        return g;
    }
    if (ev->n_prev == 0) { /* the create event: nothing before it */
        room_state_map *empty = room_state_map_new();
        long long g = empty ? room_state_group_store(c, ev->room_id, 0, NULL, empty, err) : -1;
        room_state_map_free(empty);
        return g;
    }
    if (ev->n_prev != 1 || parent == 0)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "the state before %s is not known: give it explicitly", ev->event_id);
    return parent;
}

/* The state event ev replaced (v1.19's unsigned.replaces_state): the entry
 * for its type and key in the state before it. A given state map answers
 * for free; an event on the current state leaves it to the INSERT, which
 * reads current_state before this event moves it (*from_current); only an
 * event on another group (a fork) loads that group. NULL with *from_current
 * false: nothing replaced, or not a state event. malloc'd. */
static char *replaced_state(db_conn *c, const room_persist_item *it, long long before,
                            bool *from_current) {
    const room_event *ev = it->ev;
    *from_current = false;
    if (it->outlier || !ev->state_key || before <= 0) return NULL;
    if (it->state_before) {
        const char *id = room_state_map_get(it->state_before, ev->type, ev->state_key);
        return id ? strdup(id) : NULL;
    }
    if (it->extends_current) return *from_current = true, NULL;
    room_state_map *m = room_state_map_new();
    char *id = NULL;
    hs_err ignored = {0};
    /* A failure costs the field, not the event. */
    if (m && room_state_group_load(c, before, m, &ignored) == 0) {
        const char *x = room_state_map_get(m, ev->type, ev->state_key);
        id = x ? strdup(x) : NULL;
    }
    room_state_map_free(m);
    return id;
}

/* The event, with its auth events (sql/026) and its prev_events edges, in
 * one statement; and when it may open a gap — it enters the timeline while
 * one of its prev_events is not in it — that gap's position (sql/030),
 * which /sync reads to say `limited`. Only events from other servers can: a
 * local event is built on events we have, so its statement leaves the gap
 * check out (a second INSERT, even of no row, would cost every send). The
 * check sees the events this transaction stored before this one
 * (statements run in order), not this one. */
#define EDGES_CTE                                                                          \
    "p AS (INSERT INTO event_edges (event_id, prev_event_id, room_id)"                     \
    "  SELECT $1, unnest($17::text[]), $2 ON CONFLICT DO NOTHING)"
#define INSERT_EVENT                                                                       \
    "INSERT INTO events (event_id, room_id, type, state_key, sender, depth,"               \
    " origin_server_ts, stream_ordering, outlier, soft_failed, rejected_reason,"           \
    " state_before, state_after, json, replaces_state, auth_ids)"                          \
    " VALUES ($1, $2, $3, $4, $5, $6, $7,"                                                 \
    "  CASE WHEN $8 THEN NULL WHEN $14::bigint <> 0 THEN $14::bigint"                      \
    "   ELSE nextval('events_stream_seq') END,"                                            \
    "  $8, $9, $10, $11, $12, $13,"                                                        \
    "  coalesce($15, CASE WHEN $16 THEN (SELECT cs.event_id FROM current_state cs"         \
    "   WHERE cs.room_id = $2 AND cs.type = $3 AND cs.state_key = $4) END), $18::text[])"  \
    " ON CONFLICT (event_id) DO UPDATE SET outlier = false,"                               \
    "  stream_ordering = EXCLUDED.stream_ordering, soft_failed = EXCLUDED.soft_failed,"    \
    "  rejected_reason = EXCLUDED.rejected_reason, state_before = EXCLUDED.state_before,"  \
    "  state_after = EXCLUDED.state_after, replaces_state = EXCLUDED.replaces_state"       \
    "  WHERE events.outlier AND NOT EXCLUDED.outlier"

static int insert_event(db_conn *c, const room_persist_item *it, long long before,
                        long long after, hs_err *err) {
    static db_stmt ins = DB_STMT("WITH " EDGES_CTE " " INSERT_EVENT);
    static db_stmt ins_gap = DB_STMT(
        "WITH " EDGES_CTE ", e AS (" INSERT_EVENT " RETURNING stream_ordering)"
        " INSERT INTO timeline_gaps (room_id, stream_ordering)"
        " SELECT $2, e.stream_ordering FROM e WHERE e.stream_ordering > 0"
        "  AND EXISTS (SELECT 1 FROM unnest($17::text[]) pr (id) WHERE NOT EXISTS"
        "   (SELECT 1 FROM events x WHERE x.event_id = pr.id AND NOT x.outlier))"
        " ON CONFLICT DO NOTHING");
    const room_event *ev = it->ev;
    bool from_current;
    bool may_gap = !it->outlier && !it->history && !it->extends_current && !it->known_new;
    char *replaces = replaced_state(c, it, before, &from_current);
    size_t len;
    char *json = hs_json_canonical_ex(ev->json, no_unsigned, HS_JSON_CANON_ANY_INT, &len, err);
    char *prev = db_text_array((const char *const *)ev->prev_events, ev->n_prev);
    char *auth = db_text_array((const char *const *)ev->auth_events, ev->n_auth);
    if (!json || !prev || !auth) {
        if (json) hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        free(json), free(prev), free(auth), free(replaces);
        return -1;
    }
    char depth[24], ts[24], b[24], a[24], so[24];
    snprintf(so, sizeof so, "%lld", it->stream_ordering);
    snprintf(depth, sizeof depth, "%lld", ev->depth);
    snprintf(ts, sizeof ts, "%lld", ev->origin_server_ts);
    snprintf(b, sizeof b, "%lld", before);
    snprintf(a, sizeof a, "%lld", after);
    const char *p[] = {ev->event_id, ev->room_id, ev->type, ev->state_key, ev->sender, depth, ts,
                       it->outlier ? "t" : "f", it->soft_failed ? "t" : "f", it->rejected_reason,
                       before > 0 ? b : NULL, after > 0 ? a : NULL, json, so, replaces,
                       from_current ? "t" : "f", prev, auth};
    int lens[18] = {0};
    int fmts[18] = {0};
    lens[12] = (int)len, fmts[12] = 1;
    int n = db_defer(c, may_gap ? &ins_gap : &ins, 18, p, lens, fmts, err);
    free(json);
    free(prev);
    free(auth);
    free(replaces);
    return n;
}

/* Served copies of a redacted event are redacted: remember which event
 * redacts which (whether the redaction applies is decided when serving). */
static int record_redaction(db_conn *c, const room_event *ev, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO redactions (event_id, redacts, applies) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING");
    if (strcmp(ev->type, "m.room.redaction") != 0 || !ev->redacts) return 0;
    hs_err miss = {0};
    room_event *target = room_store_get_event(c, ev->redacts, &miss);
    const char *applies = NULL;
    if (target) {
        /* Power is judged on the room's current state (cheap, and what a
         * client sees); the auth rules already admitted the redaction. */
        room_lookup l = {.c = c, .room_id = ev->room_id, .current = true};
        applies = room_redaction_applies(ev, target, room_lookup_get, &l) ? "t" : "f";
        room_lookup_clear(&l);
        room_event_free(target);
    }
    return db_exec(c, &ins, 3, (const char *[]){ev->event_id, ev->redacts, applies}, err) < 0
               ? -1
               : 0;
}

static int persist_one(db_conn *c, const room_persist_item *it, hs_err *err) {
    const room_event *ev = it->ev;
    /* A new local event (extends_current) cannot be stored yet: its ID hashes
     * prev_events that only this transaction, holding the room, has seen. */
    int kind = it->known_new ? 0 : stored_kind(c, ev->event_id, NULL, err);
    if (kind < 0) return -1;
    if (kind == 2 || (kind == 1 && it->outlier)) return 0; /* already have it */
    if (ensure_room(c, ev, err) < 0) return -1;
    long long before = 0, after = 0;
    if (!it->outlier) {
        before = group_before(c, it, err);
        if (before < 0) return -1;
        after = before;
        if (ev->state_key && !it->rejected_reason) {
            after = room_state_group_add_one(c, ev->room_id, before, ev->type, ev->state_key,
                                             ev->event_id, err);
            if (after < 0) return -1;
        }
    }
    if (insert_event(c, it, before, after, err) < 0) return -1;
    if (it->outlier || it->rejected_reason || it->soft_failed) return 0;
    if (record_redaction(c, ev, err) < 0) return -1;
    if (it->history) return 0;
    return room_store_advance(c, ev, before, after, it->extends_current, err);
}

/* A new local non-state event on the whole current state of its room
 * (locked): its state is the current group before and after, it replaces
 * nothing and it becomes the room's one extremity. Redactions are left out
 * (record_redaction reads their target). */
static bool plain_new(const room_persist_item *it) {
    const room_event *ev = it->ev;
    return it->known_new && it->extends_current && !it->outlier && !it->soft_failed &&
           !it->rejected_reason && !it->state_before && !it->history &&
           it->state_before_group > 0 && it->stream_ordering > 0 && !ev->state_key &&
           ev->n_prev == 1 &&
           strcmp(ev->type, "m.room.redaction") != 0 && strcmp(ev->type, "m.room.create") != 0;
}

/* Items that are all plain_new, each in a room of its own. */
static bool all_plain_new(const room_persist_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!plain_new(&items[i])) return false;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(items[k].ev->room_id, items[i].ev->room_id)) return false;
    }
    return n > 0;
}

static char *num(long long v) {
    char b[24];
    snprintf(b, sizeof b, "%lld", v);
    return strdup(b);
}

/* plain_new events (a batch of local sends) in two statements
 * whatever their number: the rows with their prev edges, then the rooms'
 * heads (sql/024: the one extremity on the room's row; rows the table had
 * from before are cleared). Column arrays rather than a statement per
 * event: most of a small statement's cost is the statement. */
static int persist_plain(db_conn *c, const room_persist_item *items, size_t n, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        "  $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::text[],"
        "  $11::text[]) AS u(id, room, type, sender, depth, ts, so, grp, json, prev, auth)),"
        " p AS (INSERT INTO event_edges (event_id, prev_event_id, room_id)"
        "  SELECT id, prev, room FROM u ON CONFLICT DO NOTHING)"
        " INSERT INTO events (event_id, room_id, type, sender, depth, origin_server_ts,"
        " stream_ordering, state_before, state_after, json, auth_ids)"
        " SELECT id, room, type, sender, depth, ts, so, grp, grp, convert_to(json, 'UTF8'),"
        "  auth::text[] FROM u");
    static db_stmt heads = DB_STMT(
        "WITH d AS (DELETE FROM forward_extremities WHERE room_id = ANY($1::text[]))"
        " UPDATE rooms r SET head_event = u.id, head_depth = u.depth"
        " FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(room, id, depth)"
        " WHERE r.room_id = u.room");
    enum { ID, ROOM, TYPE, SENDER, DEPTH, TS, SO, GRP, JSON, PREV, AUTH, NCOL };
    char **col[NCOL];
    int rc = -1;
    size_t made = 0;
    for (int k = 0; k < NCOL; k++) col[k] = calloc(n, sizeof(char *));
    char *arr[NCOL] = {0};
    for (int k = 0; k < NCOL; k++)
        if (!col[k]) goto done;
    for (; made < n; made++) {
        const room_event *ev = items[made].ev;
        size_t len;
        col[ID][made] = strdup(ev->event_id);
        col[ROOM][made] = strdup(ev->room_id);
        col[TYPE][made] = strdup(ev->type);
        col[SENDER][made] = strdup(ev->sender);
        col[DEPTH][made] = num(ev->depth);
        col[TS][made] = num(ev->origin_server_ts);
        col[SO][made] = num(items[made].stream_ordering);
        col[GRP][made] = num(items[made].state_before_group);
        col[JSON][made] = hs_json_canonical_ex(ev->json, no_unsigned, HS_JSON_CANON_ANY_INT,
                                               &len, err);
        col[PREV][made] = strdup(ev->prev_events[0]);
        col[AUTH][made] = db_text_array((const char *const *)ev->auth_events, ev->n_auth);
        for (int k = 0; k < NCOL; k++)
            if (!col[k][made]) {
                made++;
                if (k != JSON) hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
                goto done;
            }
    }
    for (int k = 0; k < NCOL; k++)
        if (!(arr[k] = db_text_array((const char *const *)col[k], n))) {
            hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
            goto done;
        }
    if (db_defer(c, &ins, NCOL, (const char *const *)arr, NULL, NULL, err) < 0) goto done;
    rc = db_defer(c, &heads, 3, (const char *[]){arr[ROOM], arr[ID], arr[DEPTH]}, NULL, NULL,
                  err);
done:
    for (int k = 0; k < NCOL; k++) {
        for (size_t i = 0; col[k] && i < made; i++) free(col[k][i]);
        free(col[k]);
        free(arr[k]);
    }
    return rc;
}

int room_store_persist(db_conn *c, const room_persist_item *items, size_t n, hs_err *err) {
    /* One event goes by persist_one's statements, cheaper for one row. */
    if (n > 1 && all_plain_new(items, n)) return persist_plain(c, items, n, err);
    for (size_t i = 0; i < n; i++)
        if (persist_one(c, &items[i], err) < 0) return -1;
    return 0;
}

const room_version *room_store_room_version(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_version FROM rooms WHERE room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    const room_version *v = NULL;
    if (PQntuples(r) == 1) v = room_version_get(PQgetvalue(r, 0, 0));
    else hs_err_set(err, 404, "M_NOT_FOUND", "unknown room %s", room_id);
    PQclear(r);
    return v;
}

/* One stored event from a binary result row: json, rejected, room_version,
 * event_id (id NULL: the row's). */
static room_event *event_from_row_at(PGresult *r, int row, const char *id, hs_err *err) {
    const room_version *v = room_version_get(PQgetvalue(r, row, 2));
    json_t *j = hs_json_parse(PQgetvalue(r, row, 0), (size_t)PQgetlength(r, row, 0), err);
    room_event *ev = v && j ? room_event_parse_stored(v, j, id ? id : PQgetvalue(r, row, 3), err)
                            : NULL;
    json_decref(j);
    if (ev) ev->rejected = PQgetvalue(r, row, 1)[0] != 0; /* binary bool */
    return ev;
}

static room_event *event_from_row(PGresult *r, const char *id, hs_err *err) {
    return event_from_row_at(r, 0, id, err);
}

room_event *room_store_get_event(db_conn *c, const char *event_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.json, e.rejected_reason IS NOT NULL, r.room_version"
        " FROM events e JOIN rooms r USING (room_id) WHERE e.event_id = $1");
    PGresult *r = db_run_ex(c, &q, 1, (const char *[]){event_id}, NULL, NULL, 1, err);
    if (!r) return NULL;
    room_event *ev = PQntuples(r) ? event_from_row(r, event_id, err) : NULL;
    if (!PQntuples(r)) hs_err_set(err, 404, "M_NOT_FOUND", "unknown event %s", event_id);
    PQclear(r);
    return ev;
}

int room_store_get_events(db_conn *c, const char *const *ids, size_t n, room_event **out,
                          hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.json, e.rejected_reason IS NOT NULL, r.room_version, e.event_id"
        " FROM events e JOIN rooms r USING (room_id) WHERE e.event_id = ANY($1::text[])");
    for (size_t i = 0; i < n; i++) out[i] = NULL;
    if (n == 0) return 0;
    char *arr = db_text_array(ids, n);
    if (!arr) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    PGresult *r = db_run_ex(c, &q, 1, (const char *[]){arr}, NULL, NULL, 1, err);
    free(arr);
    if (!r) return -1;
    int rc = 0;
    for (int row = 0; row < PQntuples(r) && rc == 0; row++) {
        /* A row answers every position naming it (an ID may repeat). */
        const char *id = PQgetvalue(r, row, 3);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (out[i] || strcmp(ids[i], id) != 0) continue;
            out[i] = event_from_row_at(r, row, ids[i], err);
            if (!out[i]) rc = -1;
        }
    }
    PQclear(r);
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!out[i]) rc = hs_err_set(err, 404, "M_NOT_FOUND", "unknown event %s", ids[i]);
    if (rc < 0)
        for (size_t i = 0; i < n; i++) room_event_free(out[i]), out[i] = NULL;
    return rc;
}

static db_stmt current_events_q = DB_STMT(
    "SELECT e.json, e.rejected_reason IS NOT NULL, r.room_version, e.event_id, k.i"
    " FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(type, state_key, i)"
    " JOIN current_state cs ON cs.room_id = $1 AND cs.type = k.type"
    "  AND cs.state_key = k.state_key"
    " JOIN events e ON e.event_id = cs.event_id JOIN rooms r ON r.room_id = cs.room_id");

void room_store_current_events_prefetch(db_conn *c, const char *room_id,
                                        const char *const *types, const char *const *state_keys,
                                        size_t n) {
    if (n == 0) return;
    char *ta = db_text_array(types, n), *sa = db_text_array(state_keys, n);
    hs_err ignored = {0};
    if (ta && sa)
        db_prefetch(c, &current_events_q, 3, (const char *[]){room_id, ta, sa}, 1, &ignored);
    free(ta);
    free(sa);
}

int room_store_current_events(db_conn *c, const char *room_id, const char *const *types,
                              const char *const *state_keys, size_t n, room_event **out,
                              hs_err *err) {
    for (size_t i = 0; i < n; i++) out[i] = NULL;
    if (n == 0) return 0;
    char *ta = db_text_array(types, n), *sa = db_text_array(state_keys, n);
    PGresult *r = ta && sa ? db_run_ex(c, &current_events_q, 3, (const char *[]){room_id, ta, sa},
                                       NULL, NULL, 1, err)
                           : NULL;
    free(ta);
    free(sa);
    if (!r) return ta && sa ? -1 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    int rc = 0;
    for (int row = 0; row < PQntuples(r) && rc == 0; row++) {
        /* binary int8: the 1-based position of the pair asked */
        const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, 4);
        unsigned long long pos = 0;
        for (int k = 0; k < 8; k++) pos = pos << 8 | b[k];
        if (pos < 1 || pos > n || out[pos - 1]) continue;
        if (!(out[pos - 1] = event_from_row_at(r, row, NULL, err))) rc = -1;
    }
    PQclear(r);
    if (rc < 0)
        for (size_t i = 0; i < n; i++) room_event_free(out[i]), out[i] = NULL;
    return rc;
}

room_event *room_store_current_event(db_conn *c, const char *room_id, const char *type,
                                     const char *state_key, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.json, e.rejected_reason IS NOT NULL, r.room_version, e.event_id"
        " FROM current_state cs JOIN events e USING (event_id) JOIN rooms r ON r.room_id = cs.room_id"
        " WHERE cs.room_id = $1 AND cs.type = $2 AND cs.state_key = $3");
    PGresult *r = db_run_ex(c, &q, 3, (const char *[]){room_id, type, state_key}, NULL, NULL, 1,
                            err);
    if (!r) return NULL;
    room_event *ev = PQntuples(r) ? event_from_row(r, NULL, err) : NULL;
    if (!PQntuples(r)) hs_err_set(err, 404, "M_NOT_FOUND", "no %s/%s in %s", type, state_key, room_id);
    PQclear(r);
    return ev;
}

int room_store_state_at(db_conn *c, const char *event_id, bool after, room_state_map *out,
                        hs_err *err) {
    static db_stmt q = DB_STMT("SELECT state_before, state_after FROM events WHERE event_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id}, err);
    if (!r) return -1;
    int col = after ? 1 : 0;
    long long g = PQntuples(r) == 1 && !PQgetisnull(r, 0, col) ? atoll(PQgetvalue(r, 0, col)) : 0;
    PQclear(r);
    if (!g) return hs_err_set(err, 404, "M_NOT_FOUND", "no state known at %s", event_id);
    return room_state_group_load(c, g, out, err);
}
