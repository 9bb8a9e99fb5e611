/* guest_rooms.c — guests in rooms: who may join, and who must leave when a
 * room stops letting guests in (spec: Guest Access, "Server behaviour"). */
#include "guest_rooms.h"

#include <string.h>

#include "homeserver/core/log.h"
#include "room_send.h"

int client_guest_may_join(hs_server *srv, const char *room_id, hs_err *err) {
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    hs_err none = {0};
    room_event *ga = room_store_current_event(c, room_id, "m.room.guest_access", "", &none);
    db_release(srv->db, c);
    if (!ga && none.status != 404) return *err = none, -1;
    const char *v = ga ? json_string_value(json_object_get(ga->content, "guest_access")) : NULL;
    bool ok = v && !strcmp(v, "can_join");
    room_event_free(ga);
    return ok ? 0 : hs_err_set(err, 403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed");
}

int client_guest_may_join_remote(hs_server *srv, const char *room_id, const char *user_id,
                                 hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT EXISTS (SELECT 1 FROM fed_remote_memberships x,"
        "  json_array_elements(x.stripped_state::json) s"
        " WHERE x.user_id = $1 AND x.room_id = $2 AND x.membership = 'invite'"
        "  AND json_typeof(x.stripped_state::json) = 'array'"
        "  AND s->>'type' = 'm.room.guest_access' AND s->>'state_key' = ''"
        "  AND s->'content'->>'guest_access' = 'can_join')");
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){user_id, room_id}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return -1;
    bool ok = !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return ok ? 0 : hs_err_set(err, 403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed");
}

void client_guests_leave_if_closed(hs_server *srv, const room_event *ev) {
    /* The room's current state decides, not ev: a guest_access event received
     * late over federation may not be the current one. */
    static db_stmt q = DB_STMT(
        "SELECT cs.state_key FROM current_state cs JOIN users u ON u.user_id = cs.state_key"
        " WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.membership = 'join'"
        " AND u.is_guest AND NOT EXISTS (SELECT 1 FROM current_state g JOIN events e USING (event_id)"
        "  WHERE g.room_id = $1 AND g.type = 'm.room.guest_access' AND g.state_key = ''"
        "  AND convert_from(e.json, 'UTF8')::json->'content'->>'guest_access' = 'can_join')");
    if (strcmp(ev->type, "m.room.guest_access") || !ev->state_key || *ev->state_key) return;
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    PGresult *res = c ? db_run(c, &q, 1, (const char *[]){ev->room_id}, &err) : NULL;
    db_release(srv->db, c);
    if (!res) {
        hs_warn("guests of %s after its guest access changed: %s", ev->room_id, err.msg);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *guest = PQgetvalue(res, i, 0);
        json_t *content = json_pack("{s:s}", "membership", "leave");
        room_event *out = client_room_send_state(srv, ev->room_id, guest, "m.room.member", guest,
                                                 content, &err);
        json_decref(content);
        if (!out) hs_warn("guest %s leaving %s: %s", guest, ev->room_id, err.msg);
        room_event_free(out);
    }
    PQclear(res);
}
