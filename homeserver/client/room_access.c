/* room_access.c — membership look-ups on the current_state table. */
#include "room_access.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/db/streams.h"

const char *client_membership(db_conn *c, const char *room_id, const char *user_id, char *buf,
                              size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT membership FROM current_state"
        " WHERE room_id = $1 AND type = 'm.room.member' AND state_key = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return NULL;
    snprintf(buf, n, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return buf;
}

int client_require_joined(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    char m[32];
    if (!client_membership(c, room_id, user_id, m, sizeof m, err)) return -1;
    if (strcmp(m, "join") != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "User %s not in room %s", user_id, room_id);
    return 0;
}

int client_joined_rooms(db_conn *c, const char *user_id, char ***ids, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1"
        " AND membership = 'join' ORDER BY room_id");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    *n = (size_t)PQntuples(r);
    *ids = calloc(*n ? *n : 1, sizeof **ids);
    for (size_t i = 0; i < *n; i++) (*ids)[i] = strdup(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    return 0;
}

static int world_readable(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM current_state cs JOIN events e USING (event_id) WHERE cs.room_id = $1"
        " AND cs.type = 'm.room.history_visibility' AND cs.state_key = ''"
        " AND convert_from(e.json, 'UTF8')::json->'content'->>'history_visibility' = 'world_readable'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    int yes = PQntuples(r) > 0;
    PQclear(r);
    return yes;
}

int client_room_view_of(db_conn *c, const char *room_id, const char *user_id,
                        client_room_view *v, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.membership, cs.event_id, e.stream_ordering,"
        " EXISTS (SELECT 1 FROM room_forgotten f WHERE f.user_id = $2 AND f.room_id = $1)"
        " FROM current_state cs JOIN events e USING (event_id)"
        " WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.state_key = $2");
    memset(v, 0, sizeof *v);
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return -1;
    const char *m = PQntuples(r) ? PQgetvalue(r, 0, 0) : "";
    if (!strcmp(m, "join")) {
        v->horizon = db_stream_current(DB_STREAM_EVENTS);
    } else if (*m && strcmp(m, "invite") && strcmp(m, "knock") &&
               /* a room left and forgotten is closed to them, as in Synapse */
               PQgetvalue(r, 0, 3)[0] != 't') {
        v->horizon = atoll(PQgetvalue(r, 0, 2));
        snprintf(v->member_event, sizeof v->member_event, "%s", PQgetvalue(r, 0, 1));
    } else {
        m = "";
        v->peeking = true;
    }
    snprintf(v->membership, sizeof v->membership, "%s", m);
    PQclear(r);
    if (!v->peeking) return 0;
    int wr = world_readable(c, room_id, err);
    if (wr < 0) return -1;
    if (!wr)
        return hs_err_set(err, 403, "M_FORBIDDEN",
                          "User %s not in room %s, and room previews are disabled", user_id, room_id);
    v->horizon = db_stream_current(DB_STREAM_EVENTS);
    return 0;
}

int client_room_view_state(db_conn *c, const char *room_id, const client_room_view *v,
                           room_state_map *out, hs_err *err) {
    if (v->member_event[0] && strcmp(v->membership, "join"))
        return room_store_state_at(c, v->member_event, true, out, err);
    return room_store_current_state(c, room_id, out, err);
}
