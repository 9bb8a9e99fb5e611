/* room_initial_sync.c — GET /rooms/{roomId}/initialSync: a snapshot of one
 * room (its state, its latest messages, the user's room account data), which
 * the spec keeps for peeking into rooms one is not in (Room Previews, and the
 * Guest Access module lists it). matrix-js-sdk's peekInRoom calls it.
 *
 * As Synapse: a member gets the current state and the latest messages, a
 * former member those of when they left, anyone else those of a
 * world_readable room (without "membership"); history visibility applies to
 * the messages as in /messages. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "events_read.h"
#include "homeserver/db/streams.h"
#include "room_access.h"
#include "sync_token.h"

#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000

static json_t *state_events(db_conn *c, const char *room_id, const client_room_view *v,
                            hs_err *err) {
    room_state_map *m = room_state_map_new();
    json_t *out = NULL;
    if (client_room_view_state(c, room_id, v, m, err) == 0) {
        size_t n = room_state_map_count(m), i = 0, it = 0;
        const char **ids = calloc(n ? n : 1, sizeof *ids);
        const char *id;
        while (room_state_map_next(m, &it, NULL, NULL, &id)) ids[i++] = id;
        out = json_array();
        if (client_events_by_ids(c, ids, n, true, out, err) < 0) json_decref(out), out = NULL;
        free(ids);
    }
    room_state_map_free(m);
    return out;
}

/* The latest limit messages up to the view's horizon, oldest first, with
 * their pagination tokens. */
static json_t *latest_messages(db_conn *c, const char *user_id, const char *device_id,
                               const char *room_id, const client_room_view *v, int limit,
                               hs_err *err) {
    json_t *chunk = json_array();
    bool more = false;
    long long edge = v->horizon + 1; /* stays so when nothing is returned */
    if (limit > 0 && client_room_events_for(c, user_id, device_id, room_id, SYNC_TOKEN_POS_MIN,
                                            v->horizon, limit, true, true, chunk, &more, &edge,
                                            err) < 0)
        return json_decref(chunk), NULL;
    char start[32], end[32];
    snprintf(start, sizeof start, "t%lld", edge - 1);
    snprintf(end, sizeof end, "t%lld", v->horizon);
    return json_pack("{s:o, s:s, s:s}", "chunk", chunk, "start", start, "end", end);
}

static const char *visibility(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT visibility FROM room_directory WHERE room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    bool pub = PQntuples(r) && !strcmp(PQgetvalue(r, 0, 0), "public");
    PQclear(r);
    return pub ? "public" : "private";
}

/* The user's account data for this room (its tags are the m.tag type). */
static json_t *room_account_data(db_conn *c, const char *user_id, const char *room_id,
                                 hs_err *err) {
    json_t *rooms = json_object();
    json_t *out = NULL;
    if (client_account_data_sync(c, user_id, 0, db_stream_current(DB_STREAM_ACCOUNT_DATA), NULL,
                                 rooms, err) == 0) {
        out = json_object_get(rooms, room_id);
        out = out ? json_incref(out) : json_array();
    }
    json_decref(rooms);
    return out;
}

static int get_room_initial_sync(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *l = hs_req_query(r, "limit");
    int limit = DEFAULT_LIMIT;
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (*end || end == l || v < 0) return hs_err_set(err, 400, "M_INVALID_PARAM", "bad limit");
        limit = v > MAX_LIMIT ? MAX_LIMIT : (int)v;
    }
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    client_room_view v;
    json_t *res = NULL, *state = NULL, *messages = NULL, *account = NULL;
    const char *vis = NULL;
    if (client_room_view_of(c, room_id, r->user_id, &v, err) == 0 &&
        (state = state_events(c, room_id, &v, err)) &&
        (messages = latest_messages(c, r->user_id, r->device_id, room_id, &v, limit, err)) &&
        (vis = visibility(c, room_id, err)) &&
        (account = room_account_data(c, r->user_id, room_id, err))) {
        res = json_pack("{s:s, s:O, s:O, s:s, s:O}", "room_id", room_id, "messages", messages,
                        "state", state, "visibility", vis, "account_data", account);
        if (!v.peeking) json_object_set_new(res, "membership", json_string(v.membership));
    }
    json_decref(state), json_decref(messages), json_decref(account);
    db_release(r->srv->db, c);
    if (!res) return -1;
    *out = res;
    return 200;
}

void client_room_initial_sync_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/initialSync", get_room_initial_sync,
             HS_AUTH | HS_R0 | HS_GUEST);
}
