/* room_event_hooks.c — what follows a room event into the room, whoever
 * made it: local sends (room_send.c) and events received over federation
 * (federation/pdu_checks.c, the join and invite handshakes) run the same
 * two steps, one inside the storing transaction and one after its commit. */
#include <string.h>

#include "guest_rooms.h"
#include "notifier.h"
#include "push_actions.h"
#include "relations.h"
#include "room_send.h"

/* Forgetting follows a local user's membership, in the storing transaction:
 * coming back (a join, invite or knock) ends an earlier /forget, as in
 * Synapse, where a forget marks only the membership it was made on; and with
 * forget_rooms_on_leave (the m.forget_forced_upon_leave capability) a leave,
 * kick or ban forgets the room at once, as /forget would. */
static int forget_follows_membership(db_conn *c, hs_server *srv, const room_event *ev,
                                     hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO room_forgotten (user_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING");
    static db_stmt del = DB_STMT("DELETE FROM room_forgotten WHERE user_id = $1 AND room_id = $2");
    const char *colon = ev->membership && ev->state_key ? strchr(ev->state_key, ':') : NULL;
    if (!colon || strcmp(colon + 1, srv->cfg->server_name)) return 0;
    const char *p[] = {ev->state_key, ev->room_id};
    bool gone = !strcmp(ev->membership, "leave") || !strcmp(ev->membership, "ban");
    if (!gone) return db_defer(c, &del, 2, p, NULL, NULL, err);
    return srv->cfg->forget_rooms_on_leave ? db_defer(c, &ins, 2, p, NULL, NULL, err) : 0;
}

int client_room_events_stored(db_conn *c, hs_server *srv, const room_event *const *evs,
                              size_t n, hs_err *err) {
    if (client_relations_on_events(c, evs, n, err) < 0) return -1;
    for (size_t i = 0; i < n; i++)
        if (forget_follows_membership(c, srv, evs[i], err) < 0) return -1;
    /* Notification counts commit with the event, so /sync shows both at once. */
    return client_push_process_events(c, srv, evs, n, err);
}

int client_room_event_stored(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err) {
    return client_room_events_stored(c, srv, &ev, 1, err);
}

void client_room_event_committed(hs_server *srv, const room_event *ev) {
    hs_notify_room(ev->room_id);
    /* A membership reaches its user, who is not waiting on the room yet (an
     * invite, or their own join from another request) or no longer. */
    if (ev->membership && ev->state_key) hs_notify_users((const char *const[]){ev->state_key}, 1);
    if (ev->membership && ev->state_key) client_room_membership_changed(srv, ev);
    /* A room closed to guests: its local guests leave (guest_rooms.h). */
    if (!strcmp(ev->type, "m.room.guest_access")) client_guests_leave_if_closed(srv, ev);
}
