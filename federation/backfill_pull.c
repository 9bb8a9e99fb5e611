/* backfill_pull.c — asking another server for a room's history: the
 * outbound side of GET /_matrix/federation/v1/backfill, used when a local
 * client pages back past the oldest event we hold of a room joined over
 * federation (homeserver/client/messages.c).
 *
 * Where to start: the backward extremities near the beginning of what we
 * hold — prev events of our oldest timeline events that we lack, or hold
 * only as outliers (the state send_join gave us). Whom to ask: the servers
 * with members in the room, until one answers. What comes back is checked
 * like any PDU (format, signatures, content hash, the room's Policy Server:
 * an event it will not sign is stored soft-failed), then, oldest first, each
 * event is auth-checked against its auth events and the state before it (the
 * state after its prev events: ours, or for the oldest of the batch the
 * sender's /state_ids), never against the current state: it is the room's
 * past. It is stored as history — a negative position from the backfill
 * sequence, each batch below the previous one, so /messages reaches it going
 * backwards and /sync never sees it — with the history visibility of its
 * own state (sql/016), and it moves neither the forward extremities nor the
 * current state.
 *
 * A client waits meanwhile, so each server has ASK_TIMEOUT_MS, at most
 * MAX_SERVERS are tried, the first that answers is the only one asked, and
 * a room none of them answered for is left alone for QUIET_MS. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/relations.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "rooms/state_lookup.h"
#include "rooms_internal.h"

/* How many of our oldest events are looked at for missing prev events, and
 * how many of those are asked for at once. */
#define BACKWARD_LOOK 50
#define BACKWARD_MAX 20
/* A client waits for this: each server gets a short time, a few are tried,
 * and a room whose servers all failed is not asked again for a while. */
#define ASK_TIMEOUT_MS 10000L
#define MAX_SERVERS 3
#define QUIET_MS 60000LL
#define QUIET_SLOTS 64

static struct {
    pthread_mutex_t mu;
    struct {
        unsigned long hash;
        long long until;
    } slot[QUIET_SLOTS];
} quiet = {.mu = PTHREAD_MUTEX_INITIALIZER};

static unsigned long room_hash(const char *s) {
    unsigned long h = 5381;
    for (; *s; s++) h = h * 33 + (unsigned char)*s;
    return h;
}

/* Nobody answered for room_id lately (set: remember that now). */
static bool quiet_room(const char *room_id, bool set) {
    unsigned long h = room_hash(room_id);
    size_t i = h % QUIET_SLOTS;
    long long now = hs_now_ms();
    pthread_mutex_lock(&quiet.mu);
    bool q = quiet.slot[i].hash == h && quiet.slot[i].until > now;
    if (set) quiet.slot[i].hash = h, quiet.slot[i].until = now + QUIET_MS;
    pthread_mutex_unlock(&quiet.mu);
    return q;
}

/* The backward extremities near the start of the room's timeline. */
static int backward_extremities(db_conn *c, const char *room_id, char ***ids, size_t *n,
                                hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH oldest AS (SELECT event_id, depth FROM events WHERE room_id = $1"
        "  AND stream_ordering IS NOT NULL AND NOT outlier ORDER BY stream_ordering LIMIT $2)"
        " SELECT ed.prev_event_id FROM oldest o JOIN event_edges ed USING (event_id)"
        " WHERE NOT EXISTS (SELECT 1 FROM events p WHERE p.event_id = ed.prev_event_id"
        "   AND NOT p.outlier)"
        " GROUP BY 1 ORDER BY max(o.depth) DESC LIMIT $3");
    char look[16], max[16];
    snprintf(look, sizeof look, "%d", BACKWARD_LOOK);
    snprintf(max, sizeof max, "%d", BACKWARD_MAX);
    PGresult *r = db_run(c, &q, 3, (const char *[]){room_id, look, max}, err);
    if (!r) return -1;
    *n = 0;
    *ids = calloc((size_t)PQntuples(r) + 1, sizeof **ids);
    for (int i = 0; *ids && i < PQntuples(r); i++) (*ids)[(*n)++] = strdup(PQgetvalue(r, i, 0));
    PQclear(r);
    return *ids ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
}

/* GET /backfill?v=…&limit=… from dest: its "pdus" (new reference) or NULL. */
static json_t *ask(hs_server *srv, const char *dest, const char *room_id, char **ids, size_t n,
                   int limit, hs_err *err) {
    char *path = fed_path2("/_matrix/federation/v1/backfill", room_id, NULL);
    size_t len = path ? strlen(path) + 32 : 0;
    for (size_t i = 0; i < n; i++) len += 3 * strlen(ids[i]) + 4;
    char *full = path ? malloc(len) : NULL;
    if (!full) return free(path), hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), NULL;
    size_t w = (size_t)snprintf(full, len, "%s?limit=%d", path, limit);
    free(path);
    for (size_t i = 0; i < n; i++) {
        char *e = fed_escape(ids[i]);
        if (e) w += (size_t)snprintf(full + w, len - w, "&v=%s", e);
        free(e);
    }
    fed_request_opts o = {.timeout_ms = ASK_TIMEOUT_MS};
    long status;
    json_t *resp = NULL;
    int rc = fed_request_ex(srv, dest, "GET", full, NULL, &o, &status, &resp, err);
    free(full);
    json_t *pdus = rc == 0 ? json_incref(json_object_get(resp, "pdus")) : NULL;
    json_decref(resp);
    if (rc == 0 && !json_is_array(pdus))
        hs_err_set(err, 502, "M_UNKNOWN", "%s sent a bad /backfill answer", dest);
    if (!json_is_array(pdus)) json_decref(pdus), pdus = NULL;
    return pdus;
}

static int by_depth(const void *a, const void *b) {
    long long da = (*(room_event *const *)a)->depth, db = (*(room_event *const *)b)->depth;
    return da < db ? -1 : da > db;
}

/* n positions of the backfill sequence, below every earlier batch: pos[0]
 * (for the oldest event) is the lowest. */
static int reserve_positions(hs_server *srv, size_t n, long long *pos, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT -nextval('backfill_stream_seq') FROM generate_series(1, $1::int) ORDER BY 1");
    char cnt[24];
    snprintf(cnt, sizeof cnt, "%zu", n);
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 1, (const char *[]){cnt}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r) && (size_t)i < n; i++) pos[i] = atoll(PQgetvalue(r, i, 0));
    PQclear(r);
    return 0;
}

typedef struct history_job {
    const room_event *ev;
    const room_state_map *before;
    long long pos;
    room_verdict verdict;
    char why[400];
} history_job;

/* The history visibility in the state before the stored event ("" none). */
static int record_visibility(db_conn *c, const room_event *ev, hs_err *err) {
    static db_stmt up =
        DB_STMT("UPDATE events SET history_visibility_at = $2 WHERE event_id = $1");
    room_state_map *st = room_state_map_new();
    if (!st || room_store_state_at(c, ev->event_id, false, st, err) < 0)
        return room_state_map_free(st), -1;
    const char *hv_id = room_state_map_get(st, "m.room.history_visibility", "");
    room_event *hv = hv_id ? room_store_get_event(c, hv_id, err) : NULL;
    room_state_map_free(st);
    if (hv_id && !hv) return -1;
    const char *vis = hv ? json_string_value(json_object_get(hv->content, "history_visibility"))
                         : NULL;
    int rc = db_exec(c, &up, 2, (const char *[]){ev->event_id, vis ? vis : ""}, err) < 0 ? -1 : 0;
    room_event_free(hv);
    return rc;
}

static int history_txn(db_conn *c, void *arg, hs_err *err) {
    history_job *j = arg;
    if (room_receive_history(c, j->ev, j->before, j->pos, &j->verdict, j->why, sizeof j->why,
                             err) < 0)
        return -1;
    if (j->verdict != ROOM_ACCEPTED) return 0;
    if (record_visibility(c, j->ev, err) < 0) return -1;
    /* Threads, edits and the search index cover history too. */
    return client_relations_on_event(c, j->ev, err);
}

/* One event of the batch: auth events, the state before it, then stored.
 * 1 stored and accepted, 0 not (logged), -1 database failure. */
static int store_one(hs_server *srv, const char *dest, room_event *ev, long long pos,
                     hs_err *err) {
    hs_err e = {0};
    room_state_map *before = NULL;
    /* Checked as any received PDU: in a room with a Policy Server, an event
     * it will not sign is stored soft-failed, never shown. */
    if (fed_policy_check_incoming(srv, ev, err) < 0) return -1;
    if (fed_ensure_events(srv, dest, ev->ver, ev->room_id, (const char *const *)ev->auth_events,
                          ev->n_auth, &e) < 0 ||
        fed_state_before(srv, dest, ev, false, &before, &e) < 0) {
        hs_info("federation: backfilled %s from %s not stored: %s", ev->event_id, dest, e.msg);
        return 0;
    }
    history_job j = {.ev = ev, .before = before, .pos = pos};
    int rc = db_txn(srv->db, history_txn, &j, err);
    room_state_map_free(before);
    if (rc < 0) return -1;
    if (j.verdict != ROOM_ACCEPTED)
        hs_info("federation: backfilled %s rejected: %s", ev->event_id, j.why);
    return j.verdict == ROOM_ACCEPTED;
}

/* 1 when event_id is in the timeline (not an outlier), 0, -1. */
static int in_timeline(db_conn *c, const char *event_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM events WHERE event_id = $1 AND NOT outlier");
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id}, err);
    if (!r) return -1;
    int have = PQntuples(r) > 0;
    PQclear(r);
    return have;
}

/* The batch dest sent, checked and new to us, oldest first (n set). */
static room_event **usable(hs_server *srv, const char *dest, const room_version *v,
                           const char *room_id, const json_t *pdus, size_t *n, hs_err *err) {
    size_t i;
    json_t *pdu;
    *n = 0;
    room_event **evs = calloc(json_array_size(pdus) + 1, sizeof *evs);
    db_conn *c = evs ? db_acquire(srv->db, err) : NULL;
    if (!c) return free(evs), NULL;
    json_array_foreach(pdus, i, pdu) {
        if (i >= FED_BACKFILL_MAX) break;
        hs_err e = {0};
        room_event *ev = fed_event_verify(srv, v, pdu, &e);
        int have = ev && !strcmp(ev->room_id, room_id) ? in_timeline(c, ev->event_id, err) : 1;
        if (!ev) hs_info("federation: a backfilled event from %s is unusable: %s", dest, e.msg);
        if (have < 0) {
            room_event_free(ev);
            break;
        }
        if (have) room_event_free(ev);
        else evs[(*n)++] = ev;
    }
    db_release(srv->db, c);
    if (*n) qsort(evs, *n, sizeof *evs, by_depth);
    return evs;
}

/* Events stored from dest, or 0 (*answered false when it did not answer),
 * or -1 for a database failure. */
static int backfill_from(hs_server *srv, const char *dest, const room_version *v,
                         const char *room_id, char **ext, size_t n_ext, int limit, bool *answered,
                         hs_err *err) {
    hs_err e = {0};
    json_t *pdus = ask(srv, dest, room_id, ext, n_ext, limit, &e);
    *answered = pdus != NULL;
    if (!pdus) {
        hs_info("federation: /backfill of %s from %s: %s", room_id, dest, e.msg);
        return 0;
    }
    size_t n = 0;
    room_event **evs = usable(srv, dest, v, room_id, pdus, &n, err);
    json_decref(pdus);
    if (!evs) return -1;
    long long *pos = n ? calloc(n, sizeof *pos) : NULL;
    int stored = n && !pos ? -1 : 0;
    if (n && pos && reserve_positions(srv, n, pos, err) < 0) stored = -1;
    for (size_t i = 0; i < n; i++) {
        int one = stored >= 0 ? store_one(srv, dest, evs[i], pos[i], err) : 0;
        if (one < 0) stored = -1;
        else if (stored >= 0) stored += one;
        room_event_free(evs[i]);
    }
    free(evs), free(pos);
    return stored;
}

int fed_backfill_room(hs_server *srv, const char *room_id, int limit, hs_err *err) {
    if (limit > FED_BACKFILL_MAX) limit = FED_BACKFILL_MAX;
    if (quiet_room(room_id, false)) return 0;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    hs_err miss = {0};
    const room_version *v = room_store_room_version(c, room_id, &miss);
    char **ext = NULL;
    size_t n_ext = 0;
    json_t *servers = NULL;
    int rc = v ? backward_extremities(c, room_id, &ext, &n_ext, err) : 0;
    if (rc == 0 && n_ext && !(servers = fed_servers_in_room(c, room_id, err))) rc = -1;
    db_release(srv->db, c);
    size_t i, tried = 0;
    json_t *s;
    int stored = 0;
    bool answered = false;
    json_array_foreach(servers, i, s) {
        const char *dest = json_string_value(s);
        if (rc < 0 || stored || answered || tried == MAX_SERVERS ||
            !strcmp(dest, srv->cfg->server_name))
            continue;
        tried++;
        int got = backfill_from(srv, dest, v, room_id, ext, n_ext, limit, &answered, err);
        if (got < 0) rc = -1;
        else stored = got;
    }
    if (rc == 0 && tried && !answered) quiet_room(room_id, true);
    json_decref(servers);
    room_store_free_ids(ext, n_ext);
    return rc < 0 ? -1 : stored;
}
