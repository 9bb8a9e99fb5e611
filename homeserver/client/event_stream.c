/* event_stream.c — GET /events without room_id: the deprecated v1 event
 * stream of all the user's rooms (old_sync.yaml). SyTest still drives its
 * users through it.
 *
 * As Synapse's EventStreamHandler: from `from` (a /sync "s…" token, which
 * /initialSync's `end` is; without it, from now), the events of the rooms
 * the user is joined to and the user's own membership changes anywhere
 * (also in rooms this server is not in: a remote invite, its rejection),
 * history visibility applied, at most `limit` of them (`end` then stops at
 * the last one given, so the rest comes next); then, each with its room_id
 * where it has one, m.typing, m.receipt and room account data (m.tag among
 * it) of the joined rooms, global account data, and m.presence of the
 * users sharing a room (content.user_id set), with the presence of the
 * members met by a join in the chunk. Room events are in the v1 format
 * (room_snapshot.h). `end` is the token to pass as the next `from`.
 *
 * A long poll like /sync (sync_wait.h): with nothing new after `from`, the
 * request parks until the user or one of their rooms changes or `timeout`
 * passes. The first run marks the user online (Synapse's affect_presence). */
#include "event_stream.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "events_read.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "presence.h"
#include "receipts.h"
#include "room_access.h"
#include "room_snapshot.h"
#include "sync_token.h"
#include "sync_wait.h"
#include "typing.h"

#define DEFAULT_TIMEOUT_MS 30000LL
#define MAX_TIMEOUT_MS (10LL * 60 * 1000)
#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000

int client_event_stream_params(hs_req *r, long long *timeout, int *limit, hs_err *err) {
    const char *t = hs_req_query(r, "timeout"), *l = hs_req_query(r, "limit");
    *timeout = DEFAULT_TIMEOUT_MS, *limit = DEFAULT_LIMIT;
    char *end;
    if (t) {
        *timeout = strtoll(t, &end, 10);
        if (*end || end == t || *timeout < 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'timeout' must be a non-negative integer");
        if (*timeout > MAX_TIMEOUT_MS) *timeout = MAX_TIMEOUT_MS;
    }
    if (l) {
        long v = strtol(l, &end, 10);
        if (*end || end == l || v <= 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'limit' must be a positive integer");
        *limit = v > MAX_LIMIT ? MAX_LIMIT : (int)v;
    }
    return 0;
}

int client_event_stream_from(const char *s, sync_token *from, hs_err *err) {
    if (sync_token_parse(s, from)) return 0;
    long long pos = s && s[0] == 't' ? sync_token_events_pos(s) : -1;
    if (pos < 0) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid 'from' token");
    sync_token_now(from);
    from->pos[DB_STREAM_EVENTS] = pos;
    return 0;
}

/* Room events in (from, to]: of the joined rooms, and the user's membership
 * events anywhere (an invite, a kick). *end moves to the last one taken
 * when there were more than limit. */
static int room_events(db_conn *c, hs_req *r, const char *rooms_arr, long long from,
                       long long to, int limit, json_t *chunk, long long *end, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.event_id, e.stream_ordering FROM events e"
        " WHERE e.stream_ordering > $2 AND e.stream_ordering <= $3"
        " AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed"
        " AND (e.room_id = ANY($4::text[]) OR (e.type = 'm.room.member' AND e.state_key = $1))"
        " ORDER BY e.stream_ordering LIMIT $5");
    char f[24], t[24], l[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    snprintf(l, sizeof l, "%d", limit + 1);
    PGresult *res = db_run(c, &q, 5, (const char *[]){r->user_id, f, t, rooms_arr, l}, err);
    if (!res) return -1;
    int n = PQntuples(res) > limit ? limit : PQntuples(res);
    if (PQntuples(res) > limit) *end = atoll(PQgetvalue(res, n - 1, 1));
    const char **ids = calloc(n ? (size_t)n : 1, sizeof *ids);
    for (int i = 0; i < n; i++) ids[i] = PQgetvalue(res, i, 0);
    int rc = n ? client_events_by_ids_for(c, r->user_id, r->device_id, ids, (size_t)n, true,
                                          chunk, err)
               : 0;
    free(ids);
    PQclear(res);
    return rc;
}

/* The user's memberships in rooms this server is not in (an invite from
 * another server, its rejection) in (from, to]: only their member event is
 * here, not in the events table. */
static int remote_memberships(db_conn *c, hs_req *r, long long from, long long to,
                              json_t *chunk, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id, event_json, room_version FROM fed_remote_memberships"
        " WHERE user_id = $1 AND stream_ordering > $2 AND stream_ordering <= $3"
        " ORDER BY stream_ordering");
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    PGresult *res = db_run(c, &q, 3, (const char *[]){r->user_id, f, t}, err);
    if (!res) return -1;
    long long now = hs_now_ms();
    for (int i = 0; i < PQntuples(res); i++) {
        hs_err perr = {0};
        const char *js = PQgetvalue(res, i, 1);
        json_t *pdu = hs_json_parse_object(js, strlen(js), &perr);
        const room_version *v = room_version_get(PQgetvalue(res, i, 2));
        json_t *ev = pdu && v ? client_event_format(PQgetvalue(res, i, 0), pdu, v, NULL, NULL,
                                                    true, now)
                              : NULL;
        if (ev) json_array_append_new(chunk, ev);
        json_decref(pdu);
    }
    PQclear(res);
    return 0;
}

static void append_with_room(json_t *chunk, json_t *ev, const char *room_id) {
    json_object_set_new(ev, "room_id", json_string(room_id));
    json_array_append(chunk, ev);
}

int client_event_stream_ephemeral(db_conn *c, const char *user_id, char **rooms, size_t n,
                                  const sync_token *from, const sync_token *now, json_t *chunk,
                                  hs_err *err) {
    if (from->pos[DB_STREAM_TYPING] != now->pos[DB_STREAM_TYPING])
        for (size_t i = 0; i < n; i++) {
            json_t *ev = client_typing_sync(rooms[i], from->pos[DB_STREAM_TYPING],
                                            now->pos[DB_STREAM_TYPING]);
            if (ev) append_with_room(chunk, ev, rooms[i]), json_decref(ev);
        }
    if (from->pos[DB_STREAM_RECEIPTS] == now->pos[DB_STREAM_RECEIPTS]) return 0;
    json_t *by_room = json_object();
    int rc = client_receipts_sync(c, user_id, (const char *const *)rooms, n,
                                  from->pos[DB_STREAM_RECEIPTS], now->pos[DB_STREAM_RECEIPTS],
                                  by_room, err);
    const char *room_id;
    json_t *v;
    json_object_foreach(by_room, room_id, v) append_with_room(chunk, v, room_id);
    json_decref(by_room);
    return rc;
}

/* Account data (global, and of rooms with their room_id) that moved. */
static int account_data(db_conn *c, hs_req *r, const sync_token *from, const sync_token *now,
                        json_t *chunk, hs_err *err) {
    if (from->pos[DB_STREAM_ACCOUNT_DATA] == now->pos[DB_STREAM_ACCOUNT_DATA]) return 0;
    json_t *by_room = json_object(), *global = json_array();
    int rc = client_account_data_sync(c, r->user_id, from->pos[DB_STREAM_ACCOUNT_DATA],
                                      now->pos[DB_STREAM_ACCOUNT_DATA], global, by_room, err);
    json_array_extend(chunk, global);
    const char *room_id;
    json_t *v;
    json_object_foreach(by_room, room_id, v) {
        size_t i;
        json_t *ev;
        json_array_foreach(v, i, ev) append_with_room(chunk, ev, room_id);
    }
    json_decref(by_room), json_decref(global);
    return rc;
}

/* The users a join in the chunk makes the user meet: the joiner, or every
 * member of a room the user joined. */
static int met_by_joins(db_conn *c, hs_req *r, const json_t *chunk, json_t *users, hs_err *err) {
    static db_stmt members = DB_STMT(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join'");
    size_t i;
    json_t *ev;
    json_array_foreach(chunk, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *who = json_string_value(json_object_get(ev, "state_key"));
        const char *m = json_string_value(json_object_get(json_object_get(ev, "content"), "membership"));
        const char *room = json_string_value(json_object_get(ev, "room_id"));
        if (!type || strcmp(type, "m.room.member") || !who || !m || strcmp(m, "join") || !room)
            continue;
        if (strcmp(who, r->user_id) != 0) {
            json_array_append_new(users, json_string(who));
            continue;
        }
        PGresult *res = db_run(c, &members, 1, (const char *[]){room}, err);
        if (!res) return -1;
        for (int k = 0; k < PQntuples(res); k++)
            json_array_append_new(users, json_string(PQgetvalue(res, k, 0)));
        PQclear(res);
    }
    return 0;
}

static int presence_part(db_conn *c, hs_req *r, const sync_token *from, const sync_token *now,
                         json_t *chunk, hs_err *err) {
    json_t *presence = json_array(), *met = json_array();
    int rc = 0;
    if (from->pos[DB_STREAM_PRESENCE] != now->pos[DB_STREAM_PRESENCE])
        rc = client_presence_sync(c, r->user_id, from->pos[DB_STREAM_PRESENCE],
                                  now->pos[DB_STREAM_PRESENCE], presence, err);
    if (rc == 0) rc = met_by_joins(c, r, chunk, met, err);
    size_t n = json_array_size(met);
    if (rc == 0 && n) {
        const char **users = calloc(n, sizeof *users);
        for (size_t i = 0; i < n; i++) users[i] = json_string_value(json_array_get(met, i));
        rc = client_presence_of(c, users, n, presence, err);
        free(users);
    }
    client_presence_add_user_ids(presence);
    json_array_extend(chunk, presence);
    json_decref(presence), json_decref(met);
    return rc;
}

/* One look: the chunk from `from` to now (NULL on error); *end is the token
 * to go on from. */
static json_t *collect(db_conn *c, hs_req *r, char **joined, size_t n, const sync_token *from,
                       const sync_token *now, int limit, sync_token *end, hs_err *err) {
    *end = *now;
    json_t *chunk = json_array();
    char *arr = db_text_array((const char *const *)joined, n);
    int rc = arr ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    if (rc == 0 && from->pos[DB_STREAM_EVENTS] < now->pos[DB_STREAM_EVENTS])
        rc = room_events(c, r, arr, from->pos[DB_STREAM_EVENTS], now->pos[DB_STREAM_EVENTS], limit,
                         chunk, &end->pos[DB_STREAM_EVENTS], err);
    free(arr);
    if (rc == 0 && from->pos[DB_STREAM_EVENTS] < end->pos[DB_STREAM_EVENTS])
        rc = remote_memberships(c, r, from->pos[DB_STREAM_EVENTS], end->pos[DB_STREAM_EVENTS],
                                chunk, err);
    if (rc == 0) rc = client_event_stream_ephemeral(c, r->user_id, joined, n, from, now, chunk, err);
    if (rc == 0) rc = account_data(c, r, from, now, chunk, err);
    if (rc == 0) rc = presence_part(c, r, from, now, chunk, err);
    if (rc < 0) json_decref(chunk), chunk = NULL;
    client_events_v1_format(chunk);
    return chunk;
}

static void free_rooms(char **rooms, size_t n) {
    for (size_t i = 0; i < n; i++) free(rooms[i]);
    free(rooms);
}

/* The request's first run: the user is around (not for guests, as Synapse). */
static int mark_online(hs_req *r, hs_err *err) {
    if (r->ctx || r->is_guest) return 0;
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c ? client_presence_set(c, r->srv, r->user_id, NULL, err) : -1;
    db_release(r->srv->db, c);
    return rc;
}

int client_event_stream_get(hs_req *r, json_t **out, hs_err *err) {
    long long timeout;
    int limit;
    if (client_event_stream_params(r, &timeout, &limit, err) < 0) return -1;
    const char *f = hs_req_query(r, "from");
    sync_token from;
    sync_token_now(&from);
    if (f && client_event_stream_from(f, &from, err) < 0) return -1;
    if (mark_online(r, err) < 0) return -1;
    /* Without a token there is nothing to wait past (a resumed run could
     * not tell "now" from when it parked): answer at once. */
    long long deadline = sync_wait_begin(r, f ? timeout : 0);
    for (;;) {
        sync_token now, end;
        sync_token_now(&now);
        if (!f) from = now;
        db_conn *c = db_acquire(r->srv->db, err);
        if (!c) return -1;
        char **joined = NULL;
        size_t n = 0;
        json_t *chunk = client_joined_rooms(c, r->user_id, &joined, &n, err) == 0
                            ? collect(c, r, joined, n, &from, &now, limit, &end, err)
                            : NULL;
        db_release(r->srv->db, c);
        if (!chunk) return free_rooms(joined, n), -1;
        bool wait = json_array_size(chunk) == 0 && hs_now_ms() < deadline &&
                    !atomic_load(&r->srv->stopping);
        if (wait && sync_wait_park(r, joined, n, &now)) {
            json_decref(chunk);
            free_rooms(joined, n);
            return HS_SUSPENDED;
        }
        free_rooms(joined, n);
        if (!wait) {
            char start_s[256], end_s[256];
            sync_token_format(&from, start_s, sizeof start_s);
            sync_token_format(&end, end_s, sizeof end_s);
            *out = json_pack("{s:o, s:s, s:s}", "chunk", chunk, "start", start_s, "end", end_s);
            return 200;
        }
        json_decref(chunk); /* something committed meanwhile: look again */
    }
}
