/* guest_rooms.h — guests in rooms (the spec's Guest Access module, "Server
 * behaviour"): a guest joins only a room whose m.room.guest_access is
 * can_join, and leaves it when that stops being so. */
#ifndef CLIENT_GUEST_ROOMS_H
#define CLIENT_GUEST_ROOMS_H

#include "homeserver/http/http.h"
#include "rooms/rooms.h"

/* 0 when the room's current m.room.guest_access is can_join; else -1 with
 * 403 M_GUEST_ACCESS_FORBIDDEN (or a database error). */
int client_guest_may_join(hs_server *srv, const char *room_id, hs_err *err);

/* The same for a room this server is not in, whose state it does not know:
 * 0 only when the guest's pending invite carried m.room.guest_access
 * can_join in its stripped state (pvyhs sends it; Synapse does not, and
 * refuses every such join), else 403 as above. */
int client_guest_may_join_remote(hs_server *srv, const char *room_id, const char *user_id,
                                 hs_err *err);

/* After an m.room.guest_access event entered a room (local or received over
 * federation): if guests may no longer join it, every local guest joined to
 * it leaves (their own leave event, as Synapse sends). */
void client_guests_leave_if_closed(hs_server *srv, const room_event *ev);

#endif
