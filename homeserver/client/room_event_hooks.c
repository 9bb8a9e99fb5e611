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

int client_room_event_stored(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err) {
    if (client_relations_on_event(c, ev, err) < 0) return -1;
    /* Notification counts commit with the event, so /sync shows both at once. */
    return client_push_process_event(c, srv, ev, err);
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
