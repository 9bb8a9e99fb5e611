/* initial_sync.c — GET /initialSync (deprecated, old_sync.yaml): a snapshot
 * of every room the user is joined to or invited to (and left, with
 * archived=true), their presence, account data and receipts, and an `end`
 * token from which GET /events (event_stream.c) carries on.
 *
 * As Synapse's snapshot_all_rooms: joined and left rooms get the per-room
 * snapshot of GET /rooms/{roomId}/initialSync (room_snapshot.h; a left room
 * as it was at the leave, SPEC-216), invites their invite event and inviter,
 * "visibility" is the room directory's. Presence leaves offline users out;
 * the request marks the user online first, as /sync does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "events_read.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "presence.h"
#include "receipts.h"
#include "room_access.h"
#include "room_snapshot.h"
#include "sync_token.h"

#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000

/* The user's rooms: local memberships from the current state (a forgotten
 * left room is gone), then invites to rooms this server is not in. */
static PGresult *user_rooms(db_conn *c, const char *user_id, bool archived, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.room_id, cs.membership, cs.event_id, NULL, NULL FROM current_state cs"
        " WHERE cs.type = 'm.room.member' AND cs.state_key = $1"
        " AND (cs.membership IN ('join', 'invite') OR ($2 AND cs.membership = 'leave'"
        "  AND NOT EXISTS (SELECT 1 FROM room_forgotten f WHERE f.user_id = $1"
        "   AND f.room_id = cs.room_id)))"
        " UNION ALL"
        " SELECT x.room_id, x.membership, x.event_id, x.event_json, x.room_version"
        " FROM fed_remote_memberships x WHERE x.user_id = $1 AND x.membership = 'invite'"
        "  AND NOT EXISTS (SELECT 1 FROM current_state cs WHERE cs.room_id = x.room_id"
        "   AND cs.type = 'm.room.member' AND cs.state_key = $1)"
        " ORDER BY 1");
    return db_run(c, &q, 2, (const char *[]){user_id, archived ? "t" : "f"}, err);
}

/* An invite's entry: the invite event (from our copy of the room, or as the
 * inviting server sent it) and who sent it. */
static json_t *invite_entry(db_conn *c, PGresult *rows, int i, hs_err *err) {
    const char *room_id = PQgetvalue(rows, i, 0), *event_id = PQgetvalue(rows, i, 2);
    json_t *ev = NULL;
    if (PQgetisnull(rows, i, 3)) {
        ev = client_event_by_id(c, event_id, true, err);
    } else {
        const char *js = PQgetvalue(rows, i, 3);
        json_t *pdu = hs_json_parse_object(js, strlen(js), err);
        const room_version *v = room_version_get(PQgetvalue(rows, i, 4));
        if (pdu && v) ev = client_event_format(event_id, pdu, v, NULL, NULL, true, hs_now_ms());
        json_decref(pdu);
        if (!ev && !err->status) hs_err_set(err, 500, "M_UNKNOWN", "Unreadable invite");
    }
    const char *vis = ev ? client_room_directory_visibility(c, room_id, err) : NULL;
    if (!vis) return json_decref(ev), NULL;
    json_t *one = json_pack("[O]", ev);
    client_events_v1_format(one);
    json_decref(one);
    json_t *sender = json_object_get(ev, "sender");
    return json_pack("{s:s, s:s, s:s, s:O, s:o}", "room_id", room_id, "membership", "invite",
                     "visibility", vis, "inviter", sender ? sender : json_null(), "invite", ev);
}

/* Joined and left rooms: their snapshot. A room the user can no longer read
 * (a view refused) is left out rather than failing the whole answer. */
static json_t *member_entry(db_conn *c, hs_req *r, const char *room_id,
                            const client_snapshot_opts *o, hs_err *err) {
    client_room_view v;
    if (client_room_view_of(c, room_id, r->user_id, &v, err) < 0) return NULL;
    if (v.peeking) return json_null(); /* not theirs any more: nothing to say */
    return client_room_snapshot(c, r->user_id, r->device_id, room_id, &v, o, err);
}

/* Presence and receipts are the answer's own, not per room (Synapse). */
static int rooms_part(db_conn *c, hs_req *r, const client_snapshot_opts *o, bool archived,
                      json_t *rooms, json_t *joined_ids, hs_err *err) {
    PGresult *rows = user_rooms(c, r->user_id, archived, err);
    if (!rows) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(rows) && rc == 0; i++) {
        const char *room_id = PQgetvalue(rows, i, 0), *m = PQgetvalue(rows, i, 1);
        hs_err e = {0};
        json_t *entry = !strcmp(m, "invite") ? invite_entry(c, rows, i, &e)
                                             : member_entry(c, r, room_id, o, &e);
        if (!entry && e.status == 403) continue;
        if (!entry) *err = e, rc = -1;
        else if (json_is_object(entry)) json_array_append(rooms, entry);
        json_decref(entry);
        if (!strcmp(m, "join")) json_array_append_new(joined_ids, json_string(room_id));
    }
    PQclear(rows);
    return rc;
}

/* The receipts of the joined rooms, one m.receipt event (with its room_id)
 * per room that has any. */
static int receipts_part(db_conn *c, const char *user_id, const json_t *joined_ids,
                         long long upto, json_t *out, hs_err *err) {
    size_t n = json_array_size(joined_ids);
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = json_string_value(json_array_get(joined_ids, i));
    json_t *by_room = json_object();
    int rc = client_receipts_sync(c, user_id, ids, n, 0, upto, by_room, err);
    const char *room_id;
    json_t *ev;
    json_object_foreach(by_room, room_id, ev) {
        json_object_set_new(ev, "room_id", json_string(room_id));
        json_array_append(out, ev);
    }
    json_decref(by_room);
    free(ids);
    return rc;
}

static int get_initial_sync(hs_req *r, json_t **out, hs_err *err) {
    int limit;
    if (client_old_limit_param(hs_req_query(r, "limit"), DEFAULT_LIMIT, MAX_LIMIT, &limit, err) < 0)
        return -1;
    const char *a = hs_req_query(r, "archived");
    if (a && strcmp(a, "true") && strcmp(a, "false"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'archived' must be true or false");
    bool archived = a && !strcmp(a, "true");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    /* A sync like /sync (whose set_presence defaults to online): the user
     * is around, and sees so in the presence below (SyTest SYT-34). */
    if (client_presence_set(c, r->srv, r->user_id, NULL, err) < 0)
        return db_release(r->srv->db, c), -1;
    /* The token before reading: whatever commits while we read comes again
     * on /events from it rather than being missed. */
    sync_token now;
    sync_token_now(&now);
    char end[256];
    sync_token_format(&now, end, sizeof end);
    json_t *rooms = json_array(), *joined = json_array(), *presence = json_array(),
           *account = json_array(), *receipts = json_array();
    json_t *account_by_room = json_object();
    /* All account data in one read: the global part is the answer's, the
     * rooms' go to each room's entry. */
    int rc = client_account_data_sync(c, r->user_id, 0, now.pos[DB_STREAM_ACCOUNT_DATA], account,
                                      account_by_room, err);
    client_snapshot_opts o = {.limit = limit, .account_by_room = account_by_room};
    if (rc == 0) rc = rooms_part(c, r, &o, archived, rooms, joined, err);
    json_decref(account_by_room);
    if (rc == 0)
        rc = client_presence_sync(c, r->user_id, 0, now.pos[DB_STREAM_PRESENCE], presence, err);
    if (rc == 0)
        rc = receipts_part(c, r->user_id, joined, now.pos[DB_STREAM_RECEIPTS], receipts, err);
    db_release(r->srv->db, c);
    json_decref(joined);
    client_presence_add_user_ids(presence);
    json_t *res = rc == 0 ? json_pack("{s:O, s:O, s:O, s:O, s:s}", "rooms", rooms, "presence",
                                      presence, "account_data", account, "receipts", receipts,
                                      "end", end)
                          : NULL;
    json_decref(rooms), json_decref(presence), json_decref(account), json_decref(receipts);
    if (!res) return -1;
    *out = res;
    return 200;
}

void client_initial_sync_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/initialSync", get_initial_sync, HS_AUTH | HS_R0);
}
