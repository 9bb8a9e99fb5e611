/* room_snapshot.c — one room for the old initialSync APIs (room_snapshot.h).
 *
 * As Synapse: a member gets the current state and the latest messages, a
 * former member those of when they left (SPEC-216) and no presence or
 * receipts, a peeker those of a world_readable room; history visibility
 * applies to the messages as in /messages. */
#include "room_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "events_read.h"
#include "homeserver/db/streams.h"
#include "presence.h"
#include "receipts.h"
#include "sync_token.h"

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

const char *client_room_directory_visibility(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT visibility FROM room_directory WHERE room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    bool pub = PQntuples(r) && !strcmp(PQgetvalue(r, 0, 0), "public");
    PQclear(r);
    return pub ? "public" : "private";
}

/* The user's account data for this room, its tags (m.tag) first: SyTest
 * reads the tags as the first entry, as Synapse lists them. */
static json_t *room_account_data(const json_t *by_room, const char *room_id) {
    json_t *out = json_array(), *all = json_object_get(by_room, room_id);
    for (int tags_pass = 1; tags_pass >= 0; tags_pass--) {
        size_t i;
        json_t *ev;
        json_array_foreach(all, i, ev) {
            const char *type = json_string_value(json_object_get(ev, "type"));
            if ((type && !strcmp(type, "m.tag")) == (tags_pass == 1)) json_array_append(out, ev);
        }
    }
    return out;
}

/* The presence of the room's joined members. */
static json_t *members_presence(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    size_t n = (size_t)PQntuples(r);
    const char **users = calloc(n ? n : 1, sizeof *users);
    for (size_t i = 0; i < n; i++) users[i] = PQgetvalue(r, (int)i, 0);
    json_t *out = json_array();
    if (client_presence_of(c, users, n, out, err) < 0) json_decref(out), out = NULL;
    /* Members never seen online: offline, rather than nothing. */
    if (out && client_presence_enabled()) {
        json_t *seen = json_object(), *ev;
        size_t k;
        json_array_foreach(out, k, ev) {
            const char *who = json_string_value(json_object_get(ev, "sender"));
            if (who) json_object_set_new(seen, who, json_true());
        }
        for (size_t i = 0; i < n; i++)
            if (!json_object_get(seen, users[i]))
                json_array_append_new(out, json_pack("{s:s, s:s, s:{s:s}}", "type", "m.presence",
                                                     "sender", users[i], "content", "presence",
                                                     "offline"));
        json_decref(seen);
    }
    free(users);
    PQclear(r);
    client_presence_add_user_ids(out);
    return out;
}

/* The room's receipts as one m.receipt event with its room_id, or none. */
static json_t *room_receipts(db_conn *c, const char *user_id, const char *room_id, hs_err *err) {
    json_t *by_room = json_object(), *out = json_array();
    if (client_receipts_sync(c, user_id, &room_id, 1, 0, db_stream_current(DB_STREAM_RECEIPTS),
                             by_room, err) < 0) {
        json_decref(by_room), json_decref(out);
        return NULL;
    }
    json_t *ev = json_object_get(by_room, room_id);
    if (ev) {
        json_object_set_new(ev, "room_id", json_string(room_id));
        json_array_append(out, ev);
    }
    json_decref(by_room);
    return out;
}

json_t *client_room_snapshot(db_conn *c, const char *user_id, const char *device_id,
                             const char *room_id, const client_room_view *v,
                             const client_snapshot_opts *o, hs_err *err) {
    bool left = !v->peeking && strcmp(v->membership, "join") != 0;
    json_t *state = NULL, *messages = NULL, *account = NULL, *presence = NULL, *receipts = NULL;
    json_t *own = NULL; /* the account data read here when the caller gave none */
    const json_t *by_room = o->account_by_room;
    if (!by_room && client_account_data_sync(c, user_id, 0,
                                             db_stream_current(DB_STREAM_ACCOUNT_DATA), NULL,
                                             own = json_object(), err) < 0)
        return json_decref(own), NULL;
    if (!by_room) by_room = own;
    const char *vis = NULL;
    json_t *res = NULL;
    if ((state = state_events(c, room_id, v, err)) &&
        (messages = latest_messages(c, user_id, device_id, room_id, v, o->limit, err)) &&
        (vis = client_room_directory_visibility(c, room_id, err)) &&
        (account = room_account_data(by_room, room_id)) &&
        (!o->ephemeral || (presence = left ? json_array() : members_presence(c, room_id, err))) &&
        (!o->ephemeral ||
         (receipts = left ? json_array() : room_receipts(c, user_id, room_id, err)))) {
        client_events_v1_format(state);
        client_events_v1_format(json_object_get(messages, "chunk"));
        res = json_pack("{s:s, s:O, s:O, s:s, s:O}", "room_id", room_id, "messages", messages,
                        "state", state, "visibility", vis, "account_data", account);
        if (o->ephemeral) {
            json_object_set(res, "presence", presence);
            json_object_set(res, "receipts", receipts);
        }
        if (!v->peeking) json_object_set_new(res, "membership", json_string(v->membership));
    }
    json_decref(state), json_decref(messages), json_decref(account);
    json_decref(presence), json_decref(receipts), json_decref(own);
    return res;
}

void client_events_v1_format(json_t *events) {
    static const char *const copied[] = {"age", "redacted_because", "replaces_state",
                                         "prev_content", "invite_room_state", "knock_room_state"};
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        if (!json_object_get(ev, "event_id")) continue;
        json_t *sender = json_object_get(ev, "sender"), *u = json_object_get(ev, "unsigned");
        if (json_is_string(sender)) json_object_set(ev, "user_id", sender);
        for (size_t k = 0; k < sizeof copied / sizeof *copied; k++) {
            json_t *x = json_object_get(u, copied[k]);
            if (x) json_object_set(ev, copied[k], x);
        }
    }
}

void client_presence_add_user_ids(json_t *events) {
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        json_t *content = json_object_get(ev, "content"), *sender = json_object_get(ev, "sender");
        if (json_is_object(content) && json_is_string(sender))
            json_object_set(content, "user_id", sender);
    }
}

int client_old_limit_param(const char *s, int def, int max, int *out, hs_err *err) {
    *out = def;
    if (!s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'limit' must be a non-negative integer");
    *out = v > max ? max : (int)v;
    return 0;
}
