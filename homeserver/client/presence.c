/* presence.c — presence: its rules, its writes and time-outs, the endpoints
 * and the presence stream /sync reads.
 *
 * Every write is one transaction on the caller's connection: read the row,
 * decide the new one, and only a change others can see takes a presence
 * stream position and wakes the user's and their rooms' waiting /sync
 * requests. Bookkeeping (when the user last synced or acted) is written
 * silently and at most every SILENT_WRITE_MS, so busy clients don't turn
 * every request into a write. */
#include "presence.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/str_hash.h"
#include "homeserver/db/streams.h"
#include "notifier.h"
#include "room_access.h"

#define SILENT_WRITE_MS 10000
#define SWEEP_EVERY_MS 1000

/* /sync reads presence without the server at hand (see presence.h); every
 * entry point that has it records the config here first. */
static _Atomic(const cfg *) presence_cfg;

static const cfg *remember_cfg(hs_server *srv) {
    atomic_store(&presence_cfg, srv->cfg);
    return srv->cfg;
}

static bool valid_state(const char *s) {
    return s && (!strcmp(s, "online") || !strcmp(s, "unavailable") || !strcmp(s, "offline"));
}

/* ---- the rules ---- */

typedef struct pstate {
    bool exists;
    char state[16];
    const char *status_msg;      /* borrowed: from the row or the request */
    long long last_active, last_sync, stream_id;
    bool currently_active;
} pstate;

typedef enum { UPD_PUT, UPD_SYNC, UPD_ACTIVE } upd_kind;

typedef enum { NO_WRITE, SILENT, VISIBLE } change;

static void set_state(pstate *p, const char *s) { snprintf(p->state, sizeof p->state, "%s", s); }

/* The row after an update, and whether anyone can see the difference. */
static change next_state(const pstate *old, upd_kind k, const char *state, const char *msg,
                         long long now, pstate *nw) {
    *nw = *old;
    if (!old->exists) set_state(nw, "offline");
    bool stale = now - old->last_sync >= SILENT_WRITE_MS;
    switch (k) {
    case UPD_PUT: /* an explicit choice: always news, status message included */
        set_state(nw, state);
        nw->status_msg = msg;
        nw->last_sync = now;
        nw->currently_active = !strcmp(state, "online");
        if (nw->currently_active) nw->last_active = now;
        return VISIBLE;
    case UPD_SYNC:
        if (!strcmp(state, "offline")) return NO_WRITE;
        nw->last_sync = now;
        if (!strcmp(state, "online") && !strcmp(nw->state, "offline")) {
            set_state(nw, "online");
            nw->last_active = now;
            nw->currently_active = true;
            return VISIBLE;
        }
        if (!strcmp(state, "unavailable") && strcmp(nw->state, "unavailable") != 0) {
            set_state(nw, "unavailable");
            nw->currently_active = false;
            return VISIBLE;
        }
        return stale ? SILENT : NO_WRITE;
    case UPD_ACTIVE:
        nw->last_sync = nw->last_active = now;
        if (strcmp(nw->state, "online") != 0 || !old->currently_active) {
            set_state(nw, "online");
            nw->currently_active = true;
            return VISIBLE;
        }
        return stale || now - old->last_active >= SILENT_WRITE_MS ? SILENT : NO_WRITE;
    }
    return NO_WRITE;
}

/* ---- waking readers ---- */

static void notify_presence(db_conn *c, const char *user_id) {
    hs_notify_users((const char *const[]){user_id}, 1);
    char **rooms;
    size_t n;
    hs_err ignored = {0};
    if (client_joined_rooms(c, user_id, &rooms, &n, &ignored) < 0) return;
    for (size_t i = 0; i < n; i++) {
        hs_notify_room(rooms[i]);
        free(rooms[i]);
    }
    free(rooms);
}

/* ---- what this process last wrote ---- */

/* The state and last_sync_ts of recently written rows, so a /sync that
 * would change nothing (the common case: a client syncing again within
 * SILENT_WRITE_MS with the same set_presence) skips its transaction. Only
 * this process writes its users' rows (presence_update and the sweep, which
 * forgets the rows it changes); a slot collision just forgets the older user. */
#define KNOWN_SLOTS 1024

typedef struct known_row {
    char user_id[256];
    char state[16];
    long long last_sync;
} known_row;

static known_row known[KNOWN_SLOTS];
static pthread_mutex_t known_mu = PTHREAD_MUTEX_INITIALIZER;

static known_row *known_slot(const char *user_id) {
    return &known[hs_str_hash(user_id) % KNOWN_SLOTS];
}

static void remember_row(const char *user_id, const pstate *p) {
    if (strlen(user_id) >= sizeof known[0].user_id) return;
    pthread_mutex_lock(&known_mu);
    known_row *k = known_slot(user_id);
    strcpy(k->user_id, user_id);
    snprintf(k->state, sizeof k->state, "%s", p->state);
    k->last_sync = p->last_sync;
    pthread_mutex_unlock(&known_mu);
}

static void forget_row(const char *user_id) {
    pthread_mutex_lock(&known_mu);
    known_row *k = known_slot(user_id);
    if (!strcmp(k->user_id, user_id)) k->user_id[0] = 0;
    pthread_mutex_unlock(&known_mu);
}

void client_presence_forget_known(void) {
    pthread_mutex_lock(&known_mu);
    for (size_t i = 0; i < KNOWN_SLOTS; i++) known[i].user_id[0] = 0;
    pthread_mutex_unlock(&known_mu);
}

/* Whether a /sync with this set_presence would write nothing (next_state's
 * NO_WRITE), judged from the remembered row. */
static bool sync_changes_nothing(const char *user_id, const char *state, long long now) {
    if (!strcmp(state, "offline")) return true;
    pthread_mutex_lock(&known_mu);
    const known_row *k = known_slot(user_id);
    bool same = !strcmp(k->user_id, user_id) && !strcmp(k->state, state) &&
                now - k->last_sync < SILENT_WRITE_MS;
    pthread_mutex_unlock(&known_mu);
    return same;
}

/* ---- writes ---- */

/* Presence commits on the caller's connection, so it must not be inside the
 * caller's transaction (db_txn's or one begun by hand). */
static bool in_transaction(db_conn *c) {
    return c->in_txn || PQtransactionStatus(c->pg) != PQTRANS_IDLE;
}

static int load_row(db_conn *c, const char *user_id, pstate *p, PGresult **keep, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state, status_msg, last_active_ts, last_sync_ts, currently_active, stream_id"
        " FROM presence WHERE user_id = $1 FOR UPDATE");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    *p = (pstate){.exists = PQntuples(r) == 1};
    if (p->exists) {
        set_state(p, PQgetvalue(r, 0, 0));
        p->status_msg = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
        p->last_active = atoll(PQgetvalue(r, 0, 2));
        p->last_sync = atoll(PQgetvalue(r, 0, 3));
        p->currently_active = !strcmp(PQgetvalue(r, 0, 4), "t");
        p->stream_id = atoll(PQgetvalue(r, 0, 5));
    }
    *keep = r; /* status_msg points into it */
    return 0;
}

static int save_row(db_conn *c, const char *user_id, const pstate *p, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO presence (user_id, state, status_msg, last_active_ts, last_sync_ts,"
        " currently_active, stream_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state,"
        " status_msg = EXCLUDED.status_msg, last_active_ts = EXCLUDED.last_active_ts,"
        " last_sync_ts = EXCLUDED.last_sync_ts, currently_active = EXCLUDED.currently_active,"
        " stream_id = EXCLUDED.stream_id");
    char la[24], ls[24], sid[24];
    snprintf(la, sizeof la, "%lld", p->last_active);
    snprintf(ls, sizeof ls, "%lld", p->last_sync);
    snprintf(sid, sizeof sid, "%lld", p->stream_id);
    const char *v[] = {user_id, p->state, p->status_msg, la, ls, p->currently_active ? "t" : "f",
                       sid};
    return db_exec(c, &up, 7, v, err) < 0 ? -1 : 0;
}

/* One update in its own transaction on c. *pos is the stream position taken
 * (0 if none); the caller releases it after the transaction ends. */
static int update_txn(db_conn *c, const char *user_id, upd_kind k, const char *state,
                      const char *msg, long long *pos, change *ch, hs_err *err) {
    PGresult *row = NULL;
    pstate old, nw;
    if (load_row(c, user_id, &old, &row, err) < 0) return -1;
    *ch = next_state(&old, k, state, msg, hs_now_ms(), &nw);
    int rc = 0;
    if (*ch == VISIBLE && (*pos = nw.stream_id = db_stream_reserve(c, DB_STREAM_PRESENCE, err)) < 0)
        rc = -1, *pos = 0;
    if (rc == 0 && *ch != NO_WRITE) rc = save_row(c, user_id, &nw, err);
    /* Remembered before COMMIT: a failed COMMIT forgets it again. */
    if (rc == 0) remember_row(user_id, &nw);
    PQclear(row);
    return rc;
}

static int presence_update(db_conn *c, const char *user_id, upd_kind k, const char *state,
                           const char *msg, hs_err *err) {
    if (k == UPD_SYNC && sync_changes_nothing(user_id, state, hs_now_ms())) return 0;
    if (in_transaction(c))
        return hs_err_set(err, 500, "M_UNKNOWN", "presence is written in its own transaction");
    if (db_script(c, "BEGIN", err) < 0) return -1;
    long long pos = 0;
    change ch = NO_WRITE;
    int rc = update_txn(c, user_id, k, state, msg, &pos, &ch, err);
    if (rc == 0) rc = db_script(c, "COMMIT", err);
    else db_script(c, "ROLLBACK", NULL);
    if (rc != 0) forget_row(user_id);
    if (pos > 0) db_stream_done(DB_STREAM_PRESENCE, pos);
    if (rc == 0 && ch == VISIBLE) notify_presence(c, user_id);
    return rc;
}

/* ---- time-outs ---- */

#define SWEEP_WHERE                                                               \
    " WHERE state <> 'offline' AND (last_sync_ts < $1 OR (state = 'online' AND"   \
    " (last_active_ts < $2 OR (currently_active AND last_active_ts < $3))))"

static int sweep_txn(db_conn *c, const char *const *p, char ***users, size_t *n, long long *pos,
                     hs_err *err) {
    static db_stmt upd = DB_STMT(
        "UPDATE presence SET state = CASE WHEN last_sync_ts < $1 THEN 'offline'"
        " WHEN state = 'online' AND last_active_ts < $2 THEN 'unavailable' ELSE state END,"
        " currently_active = false, stream_id = $4" SWEEP_WHERE " RETURNING user_id");
    char buf[24];
    if ((*pos = db_stream_reserve(c, DB_STREAM_PRESENCE, err)) < 0) return *pos = 0, -1;
    snprintf(buf, sizeof buf, "%lld", *pos);
    PGresult *r = db_run(c, &upd, 4, (const char *[]){p[0], p[1], p[2], buf}, err);
    if (!r) return -1;
    *n = (size_t)PQntuples(r);
    *users = calloc(*n ? *n : 1, sizeof **users);
    for (size_t i = 0; i < *n; i++) (*users)[i] = strdup(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    return 0;
}

/* Apply the time-outs that are due: offline, unavailable, no longer
 * currently active. Rows are only touched (and a position only taken) when
 * some are due. */
static int presence_sweep(db_conn *c, const cfg *cf, hs_err *err) {
    static db_stmt due = DB_STMT("SELECT EXISTS (SELECT 1 FROM presence" SWEEP_WHERE ")");
    static atomic_llong last_sweep;
    long long now = hs_now_ms(), prev = atomic_load(&last_sweep);
    if (in_transaction(c) || now - prev < SWEEP_EVERY_MS ||
        !atomic_compare_exchange_strong(&last_sweep, &prev, now))
        return 0;
    char t_sync[24], t_idle[24], t_active[24];
    snprintf(t_sync, sizeof t_sync, "%lld",
             now - cf->presence_sync_online_timeout - CLIENT_PRESENCE_LONG_POLL_MS);
    snprintf(t_idle, sizeof t_idle, "%lld", now - cf->presence_idle_timeout);
    snprintf(t_active, sizeof t_active, "%lld", now - cf->presence_last_active_granularity);
    const char *p[] = {t_sync, t_idle, t_active};
    PGresult *r = db_run(c, &due, 3, p, err);
    if (!r) return -1;
    bool any = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!any || db_script(c, "BEGIN", err) < 0) return any ? -1 : 0;
    char **users = NULL;
    size_t n = 0;
    long long pos = 0;
    int rc = sweep_txn(c, p, &users, &n, &pos, err);
    if (rc == 0) rc = db_script(c, "COMMIT", err);
    else db_script(c, "ROLLBACK", NULL);
    if (pos > 0) db_stream_done(DB_STREAM_PRESENCE, pos);
    for (size_t i = 0; i < n; i++) {
        forget_row(users[i]);
        if (rc == 0) notify_presence(c, users[i]);
        free(users[i]);
    }
    free(users);
    return rc;
}

/* ---- what other areas call ---- */

int client_presence_set(db_conn *c, hs_server *srv, const char *user_id, const char *state,
                        hs_err *err) {
    const cfg *cf = remember_cfg(srv);
    if (!state) state = "online";
    if (!valid_state(state))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "set_presence must be online, offline or unavailable");
    if (!cf->presence_enabled) return 0;
    if (presence_sweep(c, cf, err) < 0) return -1;
    return presence_update(c, user_id, UPD_SYNC, state, NULL, err);
}

int client_presence_bump_active(db_conn *c, hs_server *srv, const char *user_id, hs_err *err) {
    if (!remember_cfg(srv)->presence_enabled) return 0;
    return presence_update(c, user_id, UPD_ACTIVE, NULL, NULL, err);
}

/* The content clients see for a row: presence, last_active_ago,
 * status_msg, currently_active (only when online), as Synapse sends them. */
static json_t *format_content(PGresult *r, int i, int col, long long now) {
    const char *state = PQgetvalue(r, i, col);
    json_t *o = json_pack("{s:s}", "presence", state);
    long long la = atoll(PQgetvalue(r, i, col + 2));
    if (la > 0) json_object_set_new(o, "last_active_ago", json_integer(now > la ? now - la : 0));
    if (!PQgetisnull(r, i, col + 1))
        json_object_set_new(o, "status_msg", json_string(PQgetvalue(r, i, col + 1)));
    if (!strcmp(state, "online"))
        json_object_set_new(o, "currently_active",
                            json_boolean(!strcmp(PQgetvalue(r, i, col + 3), "t")));
    return o;
}

/* Run q, whose rows are (user_id, state, status_msg, last_active_ts,
 * currently_active), and append them to events as m.presence events. */
static int append_rows(db_conn *c, db_stmt *q, int n, const char *const *params, json_t *events,
                       hs_err *err) {
    PGresult *r = db_run(c, q, n, params, err);
    if (!r) return -1;
    long long now = hs_now_ms();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(events, json_pack("{s:s, s:s, s:o}", "type", "m.presence", "sender",
                                                PQgetvalue(r, i, 0), "content",
                                                format_content(r, i, 1, now)));
    PQclear(r);
    return 0;
}

int client_presence_sync(db_conn *c, const char *user_id, long long from, long long to,
                         json_t *events, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT p.user_id, p.state, p.status_msg, p.last_active_ts, p.currently_active"
        " FROM presence p WHERE p.stream_id > $2 AND p.stream_id <= $3"
        " AND ($4 OR p.state <> 'offline') AND (p.user_id = $1 OR EXISTS ("
        "   SELECT 1 FROM current_state a JOIN current_state b ON b.room_id = a.room_id"
        "   WHERE a.type = 'm.room.member' AND a.state_key = $1 AND a.membership = 'join'"
        "   AND b.type = 'm.room.member' AND b.state_key = p.user_id AND b.membership = 'join'))"
        " ORDER BY p.stream_id");
    const cfg *cf = atomic_load(&presence_cfg);
    if (cf && !cf->presence_enabled) return 0;
    bool offline_too = from > 0 || (cf && cf->presence_include_offline_users_on_sync);
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    return append_rows(c, &q, 4, (const char *[]){user_id, f, t, offline_too ? "t" : "f"},
                       events, err);
}

int client_presence_room_sync(db_conn *c, const char *room_id, long long from, long long to,
                              json_t *events, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT p.user_id, p.state, p.status_msg, p.last_active_ts, p.currently_active"
        " FROM presence p JOIN current_state m ON m.state_key = p.user_id"
        " WHERE m.room_id = $1 AND m.type = 'm.room.member' AND m.membership = 'join'"
        " AND p.stream_id > $2 AND p.stream_id <= $3 ORDER BY p.stream_id");
    const cfg *cf = atomic_load(&presence_cfg);
    if (cf && !cf->presence_enabled) return 0;
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    return append_rows(c, &q, 3, (const char *[]){room_id, f, t}, events, err);
}

bool client_presence_enabled(void) {
    const cfg *cf = atomic_load(&presence_cfg);
    return !cf || cf->presence_enabled;
}

static bool has_sender(const json_t *events, const char *user_id) {
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *s = json_string_value(json_object_get(ev, "sender"));
        if (s && !strcmp(s, user_id)) return true;
    }
    return false;
}

int client_presence_of(db_conn *c, const char *const *users, size_t n, json_t *events,
                       hs_err *err) {
    static db_stmt q = DB_STMT(
        /* A member who never set a presence is offline, not absent: Synapse
         * sends its default state, and clients count on one per member. */
        "SELECT u.id, coalesce(p.state, 'offline'), p.status_msg, coalesce(p.last_active_ts, 0),"
        "  coalesce(p.currently_active, false)"
        " FROM unnest($1::text[]) u(id) LEFT JOIN presence p ON p.user_id = u.id");
    const cfg *cf = atomic_load(&presence_cfg);
    if (n == 0 || (cf && !cf->presence_enabled)) return 0;
    char *arr = db_text_array(users, n);
    if (!arr) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    PGresult *r = db_run(c, &q, 1, (const char *[]){arr}, err);
    free(arr);
    if (!r) return -1;
    long long now = hs_now_ms();
    for (int i = 0; i < PQntuples(r); i++)
        if (!has_sender(events, PQgetvalue(r, i, 0)))
            json_array_append_new(events, json_pack("{s:s, s:s, s:o}", "type", "m.presence",
                                                    "sender", PQgetvalue(r, i, 0), "content",
                                                    format_content(r, i, 1, now)));
    PQclear(r);
    return 0;
}

/* ---- the endpoints ---- */

static bool shares_a_room(db_conn *c, const char *a, const char *b, hs_err *err, bool *ok) {
    static db_stmt q = DB_STMT(
        "SELECT EXISTS (SELECT 1 FROM current_state x JOIN current_state y ON y.room_id = x.room_id"
        " WHERE x.type = 'm.room.member' AND x.state_key = $1 AND x.membership = 'join'"
        " AND y.type = 'm.room.member' AND y.state_key = $2 AND y.membership = 'join')");
    PGresult *r = db_run(c, &q, 2, (const char *[]){a, b}, err);
    *ok = r != NULL;
    bool yes = r && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return yes;
}

static int read_presence(db_conn *c, const char *user_id, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state, status_msg, last_active_ts, currently_active FROM presence"
        " WHERE user_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    *out = PQntuples(r) ? format_content(r, 0, 0, hs_now_ms())
                        : json_pack("{s:s}", "presence", "offline");
    PQclear(r);
    return 200;
}

static int get_status(hs_req *r, json_t **out, hs_err *err) {
    const char *target = r->params[0];
    const cfg *cf = remember_cfg(r->srv);
    if (target[0] != '@' || !strchr(target, ':'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user ID %s", target);
    if (!cf->presence_enabled) {
        *out = json_pack("{s:s}", "presence", "offline");
        return 200;
    }
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    bool ok = true;
    int rc = -1;
    if (strcmp(target, r->user_id) != 0 && !shares_a_room(c, r->user_id, target, err, &ok)) {
        if (ok) hs_err_set(err, 403, "M_FORBIDDEN", "You are not allowed to see their presence.");
    } else if (presence_sweep(c, cf, err) == 0) {
        rc = read_presence(c, target, out, err);
    }
    db_release(r->srv->db, c);
    return rc;
}

static int put_status(hs_req *r, json_t **out, hs_err *err) {
    if (strcmp(r->params[0], r->user_id) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Can only set your own presence state");
    const json_t *p = json_object_get(r->json, "presence");
    const json_t *msg = json_object_get(r->json, "status_msg");
    if (!json_is_string(p)) return hs_err_set(err, 400, "M_BAD_JSON", "'presence' must be a string");
    if (!valid_state(json_string_value(p)))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid presence state");
    if (msg && !json_is_string(msg))
        return hs_err_set(err, 400, "M_BAD_JSON", "status_msg must be a string.");
    if (msg && memchr(json_string_value(msg), 0, json_string_length(msg)))
        return hs_err_set(err, 400, "M_BAD_JSON", "status_msg may not contain U+0000");
    if (remember_cfg(r->srv)->presence_enabled) {
        db_conn *c = db_acquire(r->srv->db, err);
        if (!c) return -1;
        int rc = presence_update(c, r->user_id, UPD_PUT, json_string_value(p),
                                 json_string_value(msg), err);
        db_release(r->srv->db, c);
        if (rc < 0) return -1;
    }
    *out = json_object();
    return 200;
}

void client_presence_routes(hs_router *rt) {
    const char *path = "/_matrix/client/v3/presence/{userId}/status";
    hs_route(rt, "GET", path, get_status, HS_AUTH | HS_R0);
    hs_route(rt, "PUT", path, put_status, HS_AUTH | HS_R0);
}
