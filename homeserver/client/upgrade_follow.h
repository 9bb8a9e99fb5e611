/* upgrade_follow.h — what follows a room to the room that replaces it (an
 * upgrade), as Synapse carries it: a user's push rules, tags and m.direct
 * entry, when the user first joins the new room; and this server's aliases
 * and directory listing of the old room, when the upgrade is made here or a
 * local user first joins a room another server's upgrade made. */
#ifndef CLIENT_UPGRADE_FOLLOW_H
#define CLIENT_UPGRADE_FOLLOW_H

#include "homeserver/http/http.h"

/* Move this server's aliases of old_room to new_room and, when old_room is
 * listed in the public directory, list new_room instead, in c's
 * transaction. 0, or -1 with err. */
int client_upgrade_move_listing(db_conn *c, const char *old_room, const char *new_room,
                                hs_err *err);

/* After user_id (local) joined room_id: on their first join of a room whose
 * m.room.create names a predecessor, copy their push rules, tags and
 * m.direct entry from it; and move the listing (above) when the old room's
 * current tombstone names room_id, so a room cannot claim another's aliases
 * by naming it as predecessor. 0, or -1 with err. */
int client_upgrade_follow_join(hs_server *srv, const char *room_id, const char *user_id,
                               hs_err *err);

#endif
