/* store_current.c — forward extremities, current state and auth chains.
 *
 * In the common case an event extends the only extremity and the current
 * state changes by at most that event: one row. When the DAG has forked, the
 * current state is the resolution of the states after each extremity. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "homeserver/core/str_hash.h"
#include "state_res.h"
#include "store.h"
#include "store_internal.h"

void room_store_free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

static int collect_ids(PGresult *r, int col, char ***out, size_t *n) {
    size_t rows = (size_t)PQntuples(r);
    *out = calloc(rows ? rows : 1, sizeof **out);
    if (!*out) return -1;
    for (size_t i = 0; i < rows; i++) (*out)[i] = strdup(PQgetvalue(r, (int)i, col));
    *n = rows;
    return 0;
}

static db_stmt extremities_q = DB_STMT(
    "SELECT f.event_id, e.depth FROM room_extremities f JOIN events e USING (event_id)"
    " WHERE f.room_id = $1 ORDER BY e.depth DESC, f.event_id");

int room_store_extremities(db_conn *c, const char *room_id, char ***ids, size_t *n,
                           long long *max_depth, hs_err *err) {
    PGresult *r = db_run(c, &extremities_q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    if (max_depth) *max_depth = PQntuples(r) ? atoll(PQgetvalue(r, 0, 1)) : 0;
    int rc = collect_ids(r, 0, ids, n);
    PQclear(r);
    return rc < 0 ? hs_err_set(err, 500, "M_UNKNOWN", "out of memory") : 0;
}

int room_store_auth_chain(db_conn *c, const char *const *ids, size_t n, char ***out,
                          size_t *n_out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH RECURSIVE chain(id) AS ("
        "  SELECT a.id FROM events e CROSS JOIN LATERAL unnest(e.auth_ids) AS a(id)"
        "  WHERE e.event_id = ANY($1::text[])"
        "  UNION"
        "  SELECT a.id FROM chain JOIN events e ON e.event_id = chain.id"
        "  CROSS JOIN LATERAL unnest(e.auth_ids) AS a(id))"
        " SELECT id FROM chain");
    char *arr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 1, (const char *[]){arr}, err);
    free(arr);
    if (!r) return -1;
    int rc = collect_ids(r, 0, out, n_out);
    PQclear(r);
    return rc < 0 ? hs_err_set(err, 500, "M_UNKNOWN", "out of memory") : 0;
}

int room_store_current_state(db_conn *c, const char *room_id, room_state_map *out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT type, state_key, event_id FROM current_state WHERE room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    room_state_map_clear(out);
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        if (room_state_map_set(out, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                               PQgetvalue(r, i, 2)) < 0)
            rc = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    PQclear(r);
    return rc;
}

/* A current_state row; for a membership (ev, the m.room.member event)
 * also the membership and the display name (sql/034), which push rules read
 * for every message. */
static int upsert_current(db_conn *c, const char *room_id, const char *type, const char *sk,
                          const char *event_id, const room_event *ev, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO current_state (room_id, type, state_key, event_id, membership, display_name)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room_id, type, state_key)"
        " DO UPDATE SET event_id = EXCLUDED.event_id, membership = EXCLUDED.membership,"
        " display_name = EXCLUDED.display_name");
    const char *membership = ev ? ev->membership : NULL;
    const char *name = ev ? json_string_value(json_object_get(ev->content, "displayname")) : NULL;
    const char *p[] = {room_id, type, sk, event_id, membership, name};
    return db_defer(c, &up, 6, p, NULL, NULL, err);
}

/* Fetching events for state resolution: a whole level of the algorithm's
 * walks in one query (the prefetch hook), each event parsed once and kept in
 * an open-addressing table by ID for the rest of the resolution. */
typedef struct fetch_slot {
    char *id;
    room_event *ev; /* NULL: known to be absent */
} fetch_slot;

typedef struct fetch_ctx {
    db_conn *c;
    fetch_slot *slots;
    size_t n, cap; /* cap is a power of two */
} fetch_ctx;

static size_t slot_hash(const char *s) {
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static fetch_slot *slot_find(fetch_ctx *f, const char *id) {
    if (!f->cap) return NULL;
    for (size_t i = slot_hash(id) & (f->cap - 1);; i = (i + 1) & (f->cap - 1)) {
        if (!f->slots[i].id) return &f->slots[i];
        if (!strcmp(f->slots[i].id, id)) return &f->slots[i];
    }
}

static void slot_put(fetch_ctx *f, const char *id, room_event *ev) {
    if ((f->n + 1) * 2 > f->cap) {
        fetch_ctx bigger = {.c = f->c, .cap = f->cap ? f->cap * 2 : 256};
        bigger.slots = calloc(bigger.cap, sizeof *bigger.slots);
        for (size_t i = 0; i < f->cap; i++)
            if (f->slots[i].id) *slot_find(&bigger, f->slots[i].id) = f->slots[i];
        bigger.n = f->n;
        free(f->slots);
        *f = bigger;
    }
    fetch_slot *s = slot_find(f, id);
    if (s->id) {
        room_event_free(ev); /* already there */
        return;
    }
    s->id = strdup(id);
    s->ev = ev;
    f->n++;
}

static void fetch_free(fetch_ctx *f) {
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].id) free(f->slots[i].id), room_event_free(f->slots[i].ev);
    free(f->slots);
}

static int prefetch_events(void *arg, const char *const *ids, size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.event_id, convert_from(e.json, 'UTF8'), e.rejected_reason IS NOT NULL,"
        " r.room_version FROM events e JOIN rooms r USING (room_id)"
        " WHERE e.event_id = ANY($1::text[])");
    fetch_ctx *f = arg;
    const char **want = calloc(n ? n : 1, sizeof *want);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        fetch_slot *s = slot_find(f, ids[i]);
        if (!s || !s->id) want[m++] = ids[i];
    }
    int rc = 0;
    if (m) {
        char *arr = db_text_array(want, m);
        PGresult *r = db_run(f->c, &q, 1, (const char *[]){arr}, err);
        free(arr);
        if (!r) rc = -1;
        for (int i = 0; r && i < PQntuples(r); i++) {
            hs_err perr = {0};
            json_t *j = hs_json_parse(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &perr);
            room_event *ev = j ? room_event_parse_stored(room_version_get(PQgetvalue(r, i, 3)), j,
                                                         PQgetvalue(r, i, 0), &perr)
                               : NULL;
            json_decref(j);
            if (ev) ev->rejected = PQgetvalue(r, i, 2)[0] == 't';
            slot_put(f, PQgetvalue(r, i, 0), ev);
        }
        PQclear(r);
        /* What the database does not have is remembered as absent. */
        for (size_t i = 0; rc == 0 && i < m; i++) {
            fetch_slot *s = slot_find(f, want[i]);
            if (!s || !s->id) slot_put(f, want[i], NULL);
        }
    }
    free(want);
    return rc;
}

static int fetch_event(void *arg, const char *event_id, const room_event **out, hs_err *err) {
    fetch_ctx *f = arg;
    fetch_slot *s = slot_find(f, event_id);
    if (!s || !s->id) {
        if (prefetch_events(f, &event_id, 1, err) < 0) return -1;
        s = slot_find(f, event_id);
    }
    *out = s ? s->ev : NULL;
    return 0;
}

/* Rewrite the current_state rows of a room to match `state`. */
static int sync_current_rows(db_conn *c, const char *room_id, const room_state_map *state,
                             hs_err *err) {
    static db_stmt del = DB_STMT(
        "DELETE FROM current_state WHERE room_id = $1 AND type = $2 AND state_key = $3");
    room_state_map *old = room_state_map_new();
    if (!old || room_store_current_state(c, room_id, old, err) < 0) {
        room_state_map_free(old);
        return -1;
    }
    int rc = 0;
    size_t it = 0;
    const char *t, *k, *id;
    while (rc == 0 && room_state_map_next(state, &it, &t, &k, &id)) {
        const char *was = room_state_map_get(old, t, k);
        if (was && !strcmp(was, id)) continue;
        room_event *ev = NULL;
        if (!strcmp(t, "m.room.member") && !(ev = room_store_get_event(c, id, err))) rc = -1;
        if (rc == 0) rc = upsert_current(c, room_id, t, k, id, ev, err);
        room_event_free(ev);
    }
    it = 0;
    while (rc == 0 && room_state_map_next(old, &it, &t, &k, &id))
        if (!room_state_map_get(state, t, k) &&
            db_exec(c, &del, 3, (const char *[]){room_id, t, k}, err) < 0)
            rc = -1;
    room_state_map_free(old);
    return rc;
}

int room_store_state_after_events(db_conn *c, const room_version *v, const char *const *ids,
                                  size_t n, room_state_map *out, hs_err *err) {
    room_state_map **maps = calloc(n ? n : 1, sizeof *maps);
    fetch_ctx f = {.c = c};
    int rc = -1;
    size_t loaded = 0;
    for (; loaded < n; loaded++) {
        maps[loaded] = room_state_map_new();
        if (!maps[loaded] || room_store_state_at(c, ids[loaded], true, maps[loaded], err) < 0) {
            loaded++;
            goto done;
        }
    }
    rc = room_state_resolve_batched(v, (const room_state_map *const *)maps, n, fetch_event,
                                    prefetch_events, &f, out, err);
done:
    for (size_t i = 0; i < loaded; i++) room_state_map_free(maps[i]);
    free(maps);
    fetch_free(&f);
    return rc;
}

int room_store_resolve_states(db_conn *c, const room_version *v,
                              const room_state_map *const *states, size_t n,
                              room_state_map *out, hs_err *err) {
    fetch_ctx f = {.c = c};
    int rc = room_state_resolve_batched(v, states, n, fetch_event, prefetch_events, &f, out, err);
    fetch_free(&f);
    return rc;
}

/* What the lock reads of a room (rooms r): read_head's columns. */
#define HEAD_COLUMNS                                                                    \
    "coalesce(current_state_group, 0), room_version, head_event, head_depth, state_stamp," \
    " EXISTS (SELECT 1 FROM current_state cs WHERE cs.room_id = r.room_id"                \
    "  AND cs.type = 'm.room.policy' AND cs.state_key = '')"

static db_stmt lock_q =
    DB_STMT("SELECT " HEAD_COLUMNS " FROM rooms r WHERE r.room_id = $1 FOR UPDATE");

/* The same for several rooms (batched sends), the room ID first. They are
 * locked in room ID order: two transactions locking several then never wait
 * on each other in a circle. */
static db_stmt lock_many_q =
    DB_STMT("SELECT r.room_id, " HEAD_COLUMNS " FROM rooms r WHERE r.room_id = ANY($1::text[])"
            " ORDER BY r.room_id FOR UPDATE");

/* Rooms' versions, as read under the lock: a direct-mapped table whose
 * collisions just forget the older room. */
#define KNOWN_VERSIONS 512
static struct {
    char room_id[256];
    const room_version *v;
} known_versions[KNOWN_VERSIONS];
static pthread_mutex_t known_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t version_slot(const char *room_id) { return hs_str_hash(room_id) % KNOWN_VERSIONS; }

const room_version *room_store_known_version(const char *room_id) {
    const room_version *v = NULL;
    pthread_mutex_lock(&known_mu);
    size_t i = version_slot(room_id);
    if (!strcmp(known_versions[i].room_id, room_id)) v = known_versions[i].v;
    pthread_mutex_unlock(&known_mu);
    return v;
}

static void know_version(const char *room_id, const room_version *v) {
    if (!v || strlen(room_id) >= sizeof known_versions[0].room_id) return;
    pthread_mutex_lock(&known_mu);
    size_t i = version_slot(room_id);
    strcpy(known_versions[i].room_id, room_id);
    known_versions[i].v = v;
    pthread_mutex_unlock(&known_mu);
}

void room_store_prefetch_head(db_conn *c, const char *room_id) {
    hs_err ignored = {0};
    db_prefetch(c, &lock_q, 1, (const char *[]){room_id}, 0, &ignored);
}

void room_store_prefetch_heads(db_conn *c, const char *const *room_ids, size_t n) {
    char *ids = db_text_array(room_ids, n);
    hs_err ignored = {0};
    if (ids) db_prefetch(c, &lock_many_q, 1, (const char *[]){ids}, 0, &ignored);
    free(ids);
}

/* A lock query's row from column k on (lock_q's columns): the current
 * group (-1: an unknown version), the version, the head. */
static long long read_head(PGresult *r, int row, int k, const char *room_id,
                           const room_version **v, room_head *head) {
    const room_version *rv = room_version_get(PQgetvalue(r, row, k + 1));
    if (rv) know_version(room_id, rv);
    if (v) *v = rv;
    if (head) {
        head->known = !PQgetisnull(r, row, k + 2) && !PQgetisnull(r, row, k + 3) &&
                      (size_t)PQgetlength(r, row, k + 2) < sizeof head->event_id;
        if (head->known) {
            strcpy(head->event_id, PQgetvalue(r, row, k + 2));
            head->depth = atoll(PQgetvalue(r, row, k + 3));
        }
        head->state_stamp = atoll(PQgetvalue(r, row, k + 4));
        head->has_policy = PQgetvalue(r, row, k + 5)[0] == 't';
    }
    return rv ? atoll(PQgetvalue(r, row, k)) : -1;
}

long long room_store_lock_room_head(db_conn *c, const char *room_id, const room_version **v,
                                    room_head *head, hs_err *err) {
    PGresult *r = db_run(c, &lock_q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    const room_version *rv = NULL;
    long long g = PQntuples(r) ? read_head(r, 0, 0, room_id, &rv, head) : -1;
    if (!PQntuples(r) && head) *head = (room_head){.state_stamp = -1, .has_policy = true};
    PQclear(r);
    if (g < 0) return hs_err_set(err, 404, "M_NOT_FOUND", "unknown room %s", room_id);
    if (v) *v = rv;
    return g;
}

int room_store_lock_room_heads(db_conn *c, const char *const *room_ids, size_t n,
                               long long *current, const room_version **v, room_head *heads,
                               hs_err *err) {
    char *ids = db_text_array(room_ids, n);
    if (!ids) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    PGresult *r = db_run(c, &lock_many_q, 1, (const char *[]){ids}, err);
    free(ids);
    if (!r) return -1;
    for (size_t i = 0; i < n; i++) {
        current[i] = -1;
        if (v) v[i] = NULL;
        if (heads) heads[i] = (room_head){.state_stamp = -1, .has_policy = true};
    }
    for (int row = 0; row < PQntuples(r); row++)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(room_ids[i], PQgetvalue(r, row, 0))) {
                current[i] = read_head(r, row, 1, room_ids[i], v ? &v[i] : NULL,
                                       heads ? &heads[i] : NULL);
                break;
            }
    PQclear(r);
    return 0;
}

long long room_store_lock_room(db_conn *c, const char *room_id, const room_version **v,
                               hs_err *err) {
    return room_store_lock_room_head(c, room_id, v, NULL, err);
}

int room_store_forget_current(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH d AS (DELETE FROM forward_extremities WHERE room_id = $1)"
        " UPDATE rooms SET head_event = NULL, head_depth = NULL, current_state_group = NULL,"
        " state_stamp = state_stamp + 1 WHERE room_id = $1");
    return db_exec(c, &q, 1, (const char *[]){room_id}, err) < 0 ? -1 : 0;
}

/* The current state when the DAG has several extremities: resolve the states
 * after each, store the result as a group, and rewrite the table to match. */
static long long resolve_extremities(db_conn *c, const room_event *ev, char **ext, size_t n,
                                     hs_err *err) {
    static db_stmt q = DB_STMT("SELECT state_after FROM events WHERE event_id = $1");
    room_state_map *out = room_state_map_new(), *first = room_state_map_new();
    long long g = -1;
    PGresult *r = NULL;
    if (!out || !first ||
        room_store_state_after_events(c, ev->ver, (const char *const *)ext, n, out, err) < 0 ||
        room_store_state_at(c, ext[0], true, first, err) < 0 ||
        !(r = db_run(c, &q, 1, (const char *[]){ext[0]}, err)))
        goto done;
    g = room_state_group_store(c, ev->room_id, atoll(PQgetvalue(r, 0, 0)), first, out, err);
    if (g > 0 && sync_current_rows(c, ev->room_id, out, err) < 0) g = -1;
done:
    PQclear(r);
    room_state_map_free(out);
    room_state_map_free(first);
    return g;
}

/* Called with the room locked. */
static int move_extremities(db_conn *c, const room_event *ev, hs_err *err) {
    /* The extremities may be several now: the row's head goes back into the
     * table (sql/027) and no longer speaks for it. */
    static db_stmt forget = DB_STMT(
        "WITH h AS (SELECT room_id, head_event FROM rooms WHERE room_id = $1"
        "  AND head_event IS NOT NULL),"
        " u AS (UPDATE rooms SET head_event = NULL, head_depth = NULL"
        "  WHERE room_id IN (SELECT room_id FROM h))"
        " INSERT INTO forward_extremities (room_id, event_id) SELECT room_id, head_event FROM h"
        " ON CONFLICT DO NOTHING");
    static db_stmt del = DB_STMT(
        "DELETE FROM forward_extremities WHERE room_id = $1 AND event_id = $2");
    static db_stmt ins = DB_STMT(
        "INSERT INTO forward_extremities (room_id, event_id) SELECT $1, $2"
        " WHERE NOT EXISTS (SELECT 1 FROM event_edges e JOIN events x USING (event_id)"
        "   WHERE e.prev_event_id = $2 AND NOT x.outlier AND x.rejected_reason IS NULL"
        "   AND NOT x.soft_failed) ON CONFLICT DO NOTHING");
    if (db_defer(c, &forget, 1, (const char *[]){ev->room_id}, NULL, NULL, err) < 0) return -1;
    for (size_t i = 0; i < ev->n_prev; i++)
        if (db_defer(c, &del, 2, (const char *[]){ev->room_id, ev->prev_events[i]}, NULL, NULL,
                     err) < 0)
            return -1;
    return db_defer(c, &ins, 2, (const char *[]){ev->room_id, ev->event_id}, NULL, NULL, err);
}

/* The room was locked and ev cites every extremity (room_persist_item's
 * extends_current): ev is now the only one, and the state moves by ev alone. */
static const room_event *member_of(const room_event *ev) {
    return ev->membership ? ev : NULL;
}

static int advance_linear(db_conn *c, const room_event *ev, long long before, long long after,
                          hs_err *err) {
    /* ev is the one extremity now: the row's head (sql/024, sql/027; rows
     * the table had from before are cleared: usually there are none) and,
     * when the state moved, the row's group, in one statement. */
    static db_stmt set = DB_STMT(
        "WITH d AS (DELETE FROM forward_extremities WHERE room_id = $1)"
        " UPDATE rooms SET head_event = $2, head_depth = $3::bigint,"
        " current_state_group = coalesce($4::bigint, current_state_group),"
        " state_stamp = state_stamp + CASE WHEN $4::bigint IS NULL THEN 0 ELSE 1 END"
        " WHERE room_id = $1");
    /* not a state change: the current group stays */
    if (after != before && upsert_current(c, ev->room_id, ev->type, ev->state_key, ev->event_id,
                                          member_of(ev), err) < 0)
        return -1;
    char gs[24], ds[24];
    snprintf(gs, sizeof gs, "%lld", after);
    snprintf(ds, sizeof ds, "%lld", (long long)ev->depth);
    const char *p[] = {ev->room_id, ev->event_id, ds, after != before ? gs : NULL};
    return db_defer(c, &set, 4, p, NULL, NULL, err);
}

int room_store_advance(db_conn *c, const room_event *ev, long long before, long long after,
                       bool extends_current, hs_err *err) {
    /* current_state may have changed: the stamp moves (sql/025). */
    static db_stmt set = DB_STMT("UPDATE rooms SET current_state_group = $2,"
                                 " state_stamp = state_stamp + 1 WHERE room_id = $1");
    if (extends_current) return advance_linear(c, ev, before, after, err);
    long long current = room_store_lock_room(c, ev->room_id, NULL, err);
    if (current < 0 || move_extremities(c, ev, err) < 0) return -1;
    char **ext = NULL;
    size_t n = 0;
    if (room_store_extremities(c, ev->room_id, &ext, &n, NULL, err) < 0) return -1;
    long long g;
    int rc = 0;
    /* No current state yet: the create event starts from nothing; the first
     * event of a room joined over federation brings a whole state with it,
     * which the branch below writes to the table. */
    bool first = current == 0 && ev->n_prev == 0;
    if (n == 1 && !strcmp(ext[0], ev->event_id) && (current == before || first)) {
        /* The linear case: the state changes by this event alone, if at all. */
        g = after;
        if (ev->state_key && after != before)
            rc = upsert_current(c, ev->room_id, ev->type, ev->state_key, ev->event_id,
                                member_of(ev), err);
    } else if (n == 1) {
        room_state_map *m = room_state_map_new();
        g = after;
        rc = m && room_store_state_at(c, ext[0], true, m, err) == 0 &&
                     sync_current_rows(c, ev->room_id, m, err) == 0
                 ? 0
                 : -1;
        room_state_map_free(m);
    } else {
        g = resolve_extremities(c, ev, ext, n, err);
        rc = g < 0 ? -1 : 0;
    }
    room_store_free_ids(ext, n);
    if (rc < 0) return -1;
    char gs[24];
    snprintf(gs, sizeof gs, "%lld", g);
    return db_exec(c, &set, 2, (const char *[]){ev->room_id, gs}, err) < 0 ? -1 : 0;
}
