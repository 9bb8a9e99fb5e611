/* push_rules_copy.h — a user's push rules for a room follow it to the room
 * that replaces it (an upgrade), as Synapse copies them: the server does it
 * when it upgrades a room (for every local member of the old room) and when
 * a local user first joins a room whose m.room.create names a predecessor
 * (an upgrade made elsewhere, or by hand: upgrade_follow.h). */
#ifndef CLIENT_PUSH_RULES_COPY_H
#define CLIENT_PUSH_RULES_COPY_H

#include "homeserver/http/http.h"

/* Copy user_id's enabled rules naming old_room (its room rule, and override
 * and underride rules with a room_id condition on it) to new_room, named
 * after new_room, unless the user has that rule already; in a transaction of
 * its own, waking the user's /sync when something was copied. user_id NULL:
 * every local user joined to old_room. 0, or -1 with err. */
int client_push_rules_copy_room(hs_server *srv, const char *user_id, const char *old_room,
                                const char *new_room, hs_err *err);

#endif
