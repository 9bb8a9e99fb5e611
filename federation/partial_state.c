/* partial_state.c — rooms joined with partial state ("faster joins",
 * MSC3706, spec v1.6 omit_members) and their resync in the background.
 *
 * remote_join.c asks send_join to omit members; when the answer says it did,
 * the join is stored on the state we got and the room is marked here
 * (sql/018) with the servers that were in it, in the join's transaction, and
 * the client has its answer. One thread then works through the marked rooms,
 * oldest first, as Synapse's _sync_partial_state_room does: the state at our
 * join from one of those servers (/state_ids; the events we lack through
 * /state when they are many, else /event), then in one transaction the join
 * and every event after it get their full state (room_store_rebase_state),
 * the mark goes and the completion takes an events stream position
 * (sql/021, for /sync: homeserver/client/partial_rooms.h); the room's
 * waiting syncs are woken. A failure moves on to the next server; when all fail
 * the room is tried again later (5 s doubling to 10 minutes). The marks are
 * rows, so a restart resumes the resync.
 *
 * While a room is marked: our events go to its servers as well as to those
 * we know joined (fed_room_hosts), those servers may read from us
 * (fed_server_in_room), incoming events are checked with the gaps of our
 * state filled by their auth events (room_receive_ex), and /members and
 * /joined_members wait for the resync a while (fed_partial_state_await). */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "homeserver/client/e2ee.h"
#include "homeserver/client/notifier.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "homeserver/db/streams.h"
#include "rooms_internal.h"
#include "sender_internal.h"
#include "transport_internal.h"

/* Above this many events missing from a /state_ids answer, one /state
 * request beats one /event per event. */
#define MANY_MISSING 50
#define RETRY_FIRST_MS 5000LL
#define RETRY_MAX_MS 600000LL

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* the worker waits here */
    pthread_cond_t done_cv; /* waiters for a room's full state wait here */
    bool running, stop, kick;
    pthread_t th;
    hs_server *srv;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .done_cv = PTHREAD_COND_INITIALIZER};

/* ---- the mark -------------------------------------------------------------- */

int fed_partial_state_mark(db_conn *c, const char *room_id, const char *join_event_id,
                           const char *const *servers, size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "INSERT INTO fed_partial_state_rooms (room_id, join_event_id, servers, joined_ts,"
        " next_try_ts, device_list_pos) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (room_id) DO UPDATE SET"
        " join_event_id = EXCLUDED.join_event_id, servers = EXCLUDED.servers,"
        " joined_ts = EXCLUDED.joined_ts, attempts = 0, next_try_ts = EXCLUDED.next_try_ts,"
        " device_list_pos = EXCLUDED.device_list_pos");
    char *arr = db_text_array(servers, n), ts[24], due[24], dl[24];
    if (!arr) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    /* For tests only: PVYHS_PARTIAL_STATE_RESYNC_DELAY_MS holds the resync
     * back, so a test can watch a room while its state is partial. */
    const char *delay = getenv("PVYHS_PARTIAL_STATE_RESYNC_DELAY_MS");
    long long now = hs_now_ms();
    snprintf(ts, sizeof ts, "%lld", now);
    snprintf(due, sizeof due, "%lld", now + (delay ? atoll(delay) : 0));
    snprintf(dl, sizeof dl, "%lld", db_stream_current(DB_STREAM_DEVICE_LISTS));
    long rc = db_exec(c, &q, 6, (const char *[]){room_id, join_event_id, arr, ts, due, dl}, err);
    free(arr);
    return rc < 0 ? -1 : 0;
}

int fed_room_is_partial(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM fed_partial_state_rooms WHERE room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    int yes = PQntuples(r) > 0;
    PQclear(r);
    return yes;
}

/* ---- one resync ------------------------------------------------------------ */

typedef struct resync {
    hs_server *srv;
    const char *room_id, *join_id;
    const room_version *v;
    /* The event whose state is asked for: the join's one prev event, as
     * Synapse asks (the state after it is the state before our join; some
     * resident servers, Complement's among them, answer only that), or the
     * join itself when it has several. */
    const char *at;
    long long device_list_pos; /* at the join (sql/033) */
} resync;

/* GET /state{_ids}/{roomId}?event_id=<at> at dest. */
static int get_state(const resync *rs, const char *dest, bool ids, json_t **resp, hs_err *err) {
    char *base = fed_path2(ids ? "/_matrix/federation/v1/state_ids" : "/_matrix/federation/v1/state",
                           rs->room_id, NULL);
    char *eid = fed_escape(rs->at), *path = NULL;
    if (base && eid && asprintf(&path, "%s?event_id=%s", base, eid) < 0) path = NULL;
    free(base), free(eid);
    if (!path) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    long status;
    /* A big room's /state is tens of megabytes: give it time. */
    fed_request_opts o = {.timeout_ms = ids ? 120000 : 600000};
    int rc = fed_request_ex(rs->srv, dest, "GET", path, NULL, &o, &status, resp, err);
    free(path);
    return rc;
}

/* Those of ids that are not stored, as a set (object keyed by ID). */
static json_t *missing_of(hs_server *srv, const char *const *ids, size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT id FROM unnest($1::text[]) id WHERE NOT EXISTS"
        " (SELECT 1 FROM events e WHERE e.event_id = id)");
    PGresult *r = fed_run_ids(srv, &q, ids, n, err);
    if (!r) return NULL;
    json_t *out = json_object();
    for (int i = 0; i < PQntuples(r); i++) json_object_set_new(out, PQgetvalue(r, i, 0), json_true());
    PQclear(r);
    return out;
}

/* The PDUs of a /state answer that are missing: the rest need no second
 * verification (a big room's non-member state came with the join). */
static void add_missing_pdus(const room_version *v, const json_t *pdus, const json_t *missing,
                             json_t *out) {
    size_t i;
    json_t *pdu;
    json_array_foreach(pdus, i, pdu) {
        char *id = fed_pdu_event_id(v, pdu);
        if (!id || json_object_get(missing, id)) json_array_append(out, pdu);
        free(id);
    }
}

/* The state map of ids, which must hold the create event. */
static int map_of(hs_server *srv, const char *const *ids, size_t n, room_state_map *out,
                  hs_err *err) {
    if (fed_state_map_of_ids(srv, ids, n, out, err) < 0) return -1;
    if (!room_state_map_get(out, "m.room.create", ""))
        return hs_err_set(err, 502, "M_UNKNOWN", "the state lacks the create event");
    return 0;
}

/* The events of a /state_ids answer, stored: through /state when many are
 * missing, else one by one. */
static int fetch_events(const resync *rs, const char *dest, const char *const *pdu_ids,
                        size_t n_pdu, const char *const *auth_ids, size_t n_auth, hs_err *err) {
    json_t *miss_pdu = missing_of(rs->srv, pdu_ids, n_pdu, err);
    json_t *miss_auth = miss_pdu ? missing_of(rs->srv, auth_ids, n_auth, err) : NULL;
    int rc = miss_auth ? 0 : -1;
    if (rc == 0 && json_object_size(miss_pdu) + json_object_size(miss_auth) > MANY_MISSING) {
        json_t *resp = NULL;
        rc = get_state(rs, dest, false, &resp, err);
        const json_t *pdus = json_object_get(resp, "pdus"), *chain = json_object_get(resp, "auth_chain");
        if (rc == 0 && (!json_is_array(pdus) || !json_is_array(chain))) {
            rc = hs_err_set(err, 502, "M_UNKNOWN", "%s sent a bad /state answer", dest);
        } else if (rc == 0) {
            json_t *all = json_array();
            add_missing_pdus(rs->v, chain, miss_auth, all);
            add_missing_pdus(rs->v, pdus, miss_pdu, all);
            rc = fed_store_outliers(rs->srv, dest, rs->v, rs->room_id, all, err);
            json_decref(all);
        }
        json_decref(resp);
    }
    json_decref(miss_pdu), json_decref(miss_auth);
    if (rc < 0) return -1;
    /* What is still missing (or everything, when few were), by ID. */
    if (fed_ensure_events(rs->srv, dest, rs->v, rs->room_id, auth_ids, n_auth, err) < 0) return -1;
    return fed_ensure_events(rs->srv, dest, rs->v, rs->room_id, pdu_ids, n_pdu, err);
}

typedef struct rebase_job {
    const resync *rs;
    const room_state_map *full;
    long long pos; /* the events position of the completion (sql/021) */
} rebase_job;

/* The full state replaces the partial one, the mark goes, and the
 * completion takes a position in the events stream: /sync sends the room
 * as newly joined to clients that were not shown it (partial_rooms.h), and
 * a waiting sync that sees the stream move looks again. */
static int rebase_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM fed_partial_state_rooms WHERE room_id = $1");
    static db_stmt done = DB_STMT(
        "INSERT INTO fed_partial_state_done (room_id, stream_ordering) VALUES ($1, $2)"
        " ON CONFLICT (room_id) DO UPDATE SET stream_ordering = EXCLUDED.stream_ordering");
    rebase_job *j = arg;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_EVENTS, err)) < 0) return -1;
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    if (room_store_rebase_state(c, j->rs->join_id, j->full, err) < 0) return -1;
    if (db_exec(c, &del, 1, (const char *[]){j->rs->room_id}, err) < 0) return -1;
    return db_exec(c, &done, 2, (const char *[]){j->rs->room_id, pos}, err) < 0 ? -1 : 0;
}

/* The room's joined members, as a set (a JSON object), or NULL with err. */
static json_t *joined_members(hs_server *srv, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join'");
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 1, (const char *[]){room_id}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return NULL;
    json_t *set = json_object();
    for (int i = 0; i < PQntuples(r); i++) json_object_set_new(set, PQgetvalue(r, i, 0), json_true());
    PQclear(r);
    return set;
}

typedef struct replay_job {
    hs_server *srv;
    const char *room_id;
    long long since;
    const json_t *dests;
} replay_job;

static int replay_txn(db_conn *c, void *arg, hs_err *err) {
    replay_job *j = arg;
    return fed_edus_device_lists_replay(c, j->srv, j->room_id, j->since, j->dests, err);
}

/* The servers the full state shows in the room that the partial state did
 * not (`before`, with the servers the join answer listed) missed our users'
 * device-list updates since the join: they get them now (Synapse replays
 * them too). A failure costs those servers a /user/devices fetch later. */
static void replay_device_lists(hs_server *srv, const char *room_id, const json_t *before,
                                long long since) {
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    json_t *after = json_object(), *missed = json_object();
    int rc = c ? fed_room_hosts(c, srv, room_id, after, &err) : -1;
    db_release(srv->db, c);
    const char *h;
    json_t *v;
    json_object_foreach(after, h, v) if (!json_object_get(before, h))
        json_object_set_new(missed, h, json_true());
    if (rc == 0 && json_object_size(missed) && since > 0) {
        replay_job j = {srv, room_id, since, missed};
        rc = db_txn(srv->db, replay_txn, &j, &err);
        if (rc == 0) fed_sender_wake_queued();
    }
    if (rc < 0) hs_warn("federation: device lists for %s's other servers: %s", room_id, err.msg);
    json_decref(after), json_decref(missed);
}

/* Members the full state brought (joined now, not in `before`) are users
 * the room's local members now share a room with: their device lists
 * (client_e2ee_on_members_learned). A failure costs a `changed` only. */
static void tell_members_learned(hs_server *srv, const char *room_id, const json_t *before) {
    hs_err err = {0};
    json_t *after = joined_members(srv, room_id, &err);
    const char **ids = after ? calloc(json_object_size(after) + 1, sizeof *ids) : NULL;
    size_t n = 0;
    const char *u;
    json_t *v;
    json_object_foreach(after, u, v) if (ids && !json_object_get(before, u)) ids[n++] = u;
    db_conn *c = ids ? db_acquire(srv->db, &err) : NULL;
    if (!c || client_e2ee_on_members_learned(c, room_id, ids, n, &err) < 0)
        hs_warn("federation: device lists of %s's members: %s", room_id, err.msg);
    db_release(srv->db, c);
    free(ids);
    json_decref(after);
}

static int resync_from(const resync *rs, const char *dest, hs_err *err) {
    json_t *resp = NULL;
    /* An error answer comes with its body: freed too. */
    if (get_state(rs, dest, true, &resp, err) < 0) return json_decref(resp), -1;
    size_t n_pdu = 0, n_auth = 0;
    const char **pdu_ids = fed_strings_of(json_object_get(resp, "pdu_ids"), &n_pdu);
    const char **auth_ids = fed_strings_of(json_object_get(resp, "auth_chain_ids"), &n_auth);
    int rc = 0;
    if (!pdu_ids || !auth_ids)
        rc = hs_err_set(err, 502, "M_UNKNOWN", "%s sent a bad /state_ids answer", dest);
    if (rc == 0) rc = fetch_events(rs, dest, pdu_ids, n_pdu, auth_ids, n_auth, err);
    /* Asked at the prev event: it is part of the state after it when it
     * is a state event (the answer is the state before it). */
    bool at_prev = strcmp(rs->at, rs->join_id) != 0;
    if (rc == 0 && at_prev) rc = fed_ensure_events(rs->srv, dest, rs->v, rs->room_id, &rs->at, 1, err);
    room_state_map *full = rc == 0 ? room_state_map_new() : NULL;
    if (rc == 0 && (!full || map_of(rs->srv, pdu_ids, n_pdu, full, err) < 0 ||
                    (at_prev && fed_state_map_of_ids(rs->srv, &rs->at, 1, full, err) < 0)))
        rc = -1;
    json_t *before = rc == 0 ? joined_members(rs->srv, rs->room_id, err) : NULL;
    json_t *hosts_before = json_object();
    if (rc == 0 && !before) rc = -1;
    if (rc == 0) {
        db_conn *c = db_acquire(rs->srv->db, err);
        rc = c ? fed_room_hosts(c, rs->srv, rs->room_id, hosts_before, err) : -1;
        db_release(rs->srv->db, c);
    }
    if (rc == 0) {
        rebase_job j = {rs, full, 0};
        rc = db_txn(rs->srv->db, rebase_txn, &j, err);
        /* Before the notification (one_pass): a woken sync must see it. */
        if (j.pos > 0) db_stream_done(DB_STREAM_EVENTS, j.pos);
        if (rc == 0) {
            hs_info("federation: %s has its full state (%zu state events, from %s)", rs->room_id,
                    room_state_map_count(full), dest);
            tell_members_learned(rs->srv, rs->room_id, before);
            replay_device_lists(rs->srv, rs->room_id, hosts_before, rs->device_list_pos);
        }
    }
    json_decref(before), json_decref(hosts_before);
    room_state_map_free(full);
    free(pdu_ids), free(auth_ids);
    json_decref(resp);
    /* A big room's state went through this thread's malloc arena: give it
     * back rather than keep it beside the arenas of the request threads. */
    malloc_trim(0);
    return rc;
}

/* ---- the worker ------------------------------------------------------------- */

static bool stopping(void) {
    pthread_mutex_lock(&P.mu);
    bool s = P.stop;
    pthread_mutex_unlock(&P.mu);
    return s;
}

/* No local user joined any more (everyone left while it was partial):
 * nobody needs its state, and the servers would refuse us. */
static int drop_if_left(hs_server *srv, const char *room_id, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM fed_partial_state_rooms WHERE room_id = $1");
    db_conn *c = db_acquire(srv->db, err);
    int in = c ? fed_server_in_room(c, room_id, srv->cfg->server_name, err) : -1;
    if (in == 0 && db_exec(c, &del, 1, (const char *[]){room_id}, err) < 0) in = -1;
    db_release(srv->db, c);
    if (in == 0) hs_info("federation: %s left while its state was partial", room_id);
    return in;
}

static void retry_later(hs_server *srv, const char *room_id, int attempts) {
    static db_stmt q = DB_STMT("UPDATE fed_partial_state_rooms SET attempts = attempts + 1,"
                               " next_try_ts = $2 WHERE room_id = $1");
    long long wait = RETRY_FIRST_MS;
    for (int i = 0; i < attempts && wait < RETRY_MAX_MS; i++) wait *= 2;
    if (wait > RETRY_MAX_MS) wait = RETRY_MAX_MS;
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", hs_now_ms() + wait);
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c || db_exec(c, &q, 2, (const char *[]){room_id, ts}, &err) < 0)
        hs_warn("federation: cannot note the resync of %s: %s", room_id, err.msg);
    db_release(srv->db, c);
}

/* Resync the room of row i; true when it is done (or gone). */
static bool resync_row(hs_server *srv, PGresult *r, int i) {
    const char *room_id = PQgetvalue(r, i, 0), *join_id = PQgetvalue(r, i, 1);
    hs_err err = {0};
    int in = drop_if_left(srv, room_id, &err);
    if (in <= 0) return in == 0;
    db_conn *c = db_acquire(srv->db, &err);
    const room_version *v = c ? room_store_room_version(c, room_id, &err) : NULL;
    if (!v) {
        db_release(srv->db, c);
        hs_warn("federation: resync of %s: %s", room_id, err.msg);
        return false;
    }
    /* The join's prev event: the one Synapse asks the state of. */
    room_event *join = c ? room_store_get_event(c, join_id, &err) : NULL;
    resync rs = {srv, room_id, join_id, v, join && join->n_prev == 1 ? join->prev_events[0] : join_id,
                 atoll(PQgetvalue(r, i, 5))};
    db_release(srv->db, c);
    size_t n = 0;
    json_error_t je;
    json_t *list = json_loads(PQgetvalue(r, i, 2), 0, &je);
    const char **names = fed_strings_of(list, &n);
    for (size_t k = 0; names && k < n && !stopping(); k++) {
        if (!strcmp(names[k], srv->cfg->server_name)) continue;
        hs_err e = {0};
        if (resync_from(&rs, names[k], &e) == 0) {
            free(names), json_decref(list), room_event_free(join);
            return true;
        }
        hs_info("federation: resync of %s from %s failed: %s", room_id, names[k], e.msg);
    }
    free(names), json_decref(list), room_event_free(join);
    return false;
}

/* One pass over the rooms due; the time of the next one due (0: none). */
static long long one_pass(hs_server *srv) {
    static db_stmt q = DB_STMT(
        "SELECT room_id, join_event_id, array_to_json(servers)::text, attempts, next_try_ts,"
        " device_list_pos FROM fed_partial_state_rooms ORDER BY joined_ts");
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    PGresult *r = c ? db_run(c, &q, 0, NULL, &err) : NULL;
    db_release(srv->db, c);
    if (!r) {
        hs_warn("federation: partial-state rooms: %s", err.msg);
        return hs_now_ms() + RETRY_FIRST_MS;
    }
    long long next = 0;
    for (int i = 0; i < PQntuples(r) && !stopping(); i++) {
        long long due = atoll(PQgetvalue(r, i, 4));
        if (due > hs_now_ms()) {
            if (!next || due < next) next = due;
            continue;
        }
        if (resync_row(srv, r, i)) {
            pthread_mutex_lock(&P.mu);
            pthread_cond_broadcast(&P.done_cv);
            pthread_mutex_unlock(&P.mu);
            hs_notify_room(PQgetvalue(r, i, 0));
        } else {
            retry_later(srv, PQgetvalue(r, i, 0), atoi(PQgetvalue(r, i, 3)));
            long long due2 = hs_now_ms() + RETRY_FIRST_MS;
            if (!next || due2 < next) next = due2;
        }
    }
    PQclear(r);
    return next;
}

static void *worker(void *arg) {
    hs_server *srv = arg;
    pthread_mutex_lock(&P.mu);
    while (!P.stop) {
        P.kick = false;
        pthread_mutex_unlock(&P.mu);
        long long next = one_pass(srv);
        pthread_mutex_lock(&P.mu);
        if (P.kick || P.stop) continue;
        long long wait = next ? next - hs_now_ms() : 60000;
        if (wait <= 0) continue;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&P.cv, &P.mu, &ts);
    }
    pthread_mutex_unlock(&P.mu);
    return NULL;
}

int fed_partial_state_start(hs_server *srv) {
    pthread_mutex_lock(&P.mu);
    int rc = 0;
    if (!P.running) {
        P.stop = false, P.srv = srv;
        rc = pthread_create(&P.th, NULL, worker, srv);
        P.running = rc == 0;
    }
    pthread_mutex_unlock(&P.mu);
    if (rc) hs_error("federation: cannot start the partial-state resync thread");
    return rc ? -1 : 0;
}

void fed_partial_state_wake(void) {
    pthread_mutex_lock(&P.mu);
    P.kick = true;
    pthread_cond_signal(&P.cv);
    pthread_mutex_unlock(&P.mu);
}

void fed_partial_state_stop(void) {
    pthread_mutex_lock(&P.mu);
    if (!P.running) return (void)pthread_mutex_unlock(&P.mu);
    P.stop = true;
    pthread_cond_broadcast(&P.cv);
    pthread_cond_broadcast(&P.done_cv);
    pthread_mutex_unlock(&P.mu);
    /* A request in flight is cut off by stopping the outbound HTTP thread;
     * one started just after would start it again, so until the worker is
     * gone, keep stopping it. */
    for (;;) {
        fed_http_shutdown();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        if (pthread_timedjoin_np(P.th, NULL, &ts) != ETIMEDOUT) break;
    }
    pthread_mutex_lock(&P.mu);
    P.running = false;
    pthread_mutex_unlock(&P.mu);
}

/* ---- waiting for it ------------------------------------------------------------ */

int fed_partial_state_await(hs_server *srv, const char *room_id, long timeout_ms) {
    long long deadline = hs_now_ms() + timeout_ms;
    for (;;) {
        hs_err err = {0};
        db_conn *c = db_acquire(srv->db, &err);
        int partial = c ? fed_room_is_partial(c, room_id, &err) : -1;
        db_release(srv->db, c);
        if (partial <= 0) return partial < 0 ? -1 : 1;
        long long left = deadline - hs_now_ms();
        if (left <= 0 || atomic_load(&srv->stopping)) return 0;
        if (left > 1000) left = 1000; /* look again now and then: another process may resync */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_mutex_lock(&P.mu);
        pthread_cond_timedwait(&P.done_cv, &P.mu, &ts);
        pthread_mutex_unlock(&P.mu);
    }
}
