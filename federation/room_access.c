/* room_access.c — which servers are in a room, and the checks every room
 * endpoint makes of the server calling it: in the room, and let in by its
 * server ACL (rooms/server_acl.c; spec: "Server Access Control Lists"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"
#include "transport_internal.h"

int fed_server_in_room(db_conn *c, const char *room_id, const char *server, hs_err *err) {
    /* A partial-state room: the servers its join answer listed count as in
     * it until the full state says who is. */
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join' AND substr(state_key, strpos(state_key, ':') + 1) = $2"
        " UNION ALL SELECT 1 FROM fed_partial_state_rooms WHERE room_id = $1"
        " AND $2 = ANY(servers) LIMIT 1");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, server}, err);
    if (!r) return -1;
    int in = PQntuples(r) > 0;
    PQclear(r);
    return in;
}

json_t *fed_servers_in_room(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT substr(state_key, strpos(state_key, ':') + 1) FROM current_state"
        " WHERE room_id = $1 AND type = 'm.room.member' AND membership = 'join'"
        " UNION SELECT unnest(servers) FROM fed_partial_state_rooms WHERE room_id = $1 ORDER BY 1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return out;
}

int fed_check_origin(db_conn *c, const char *room_id, const char *origin, hs_err *err) {
    hs_err miss = {0};
    if (!room_store_room_version(c, room_id, &miss))
        return miss.status == 404 ? hs_err_set(err, 404, "M_NOT_FOUND", "Unknown room %s", room_id)
                                  : (*err = miss, -1);
    int in = fed_server_in_room(c, room_id, origin, err);
    if (in < 0) return -1;
    if (!in) return hs_err_set(err, 403, "M_FORBIDDEN", "Host %s not in room %s", origin, room_id);
    int ok = room_acl_allows(c, room_id, origin, err);
    if (ok < 0) return -1;
    if (!ok)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                          origin, room_id);
    return 0;
}

void fed_verify_error(hs_err *err) {
    bool sig = err->status == 401;
    err->status = sig ? 403 : 400;
    snprintf(err->errcode, sizeof err->errcode, "%s", sig ? "M_FORBIDDEN" : "M_INVALID_PARAM");
}
