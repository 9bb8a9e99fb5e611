/* room_access.h — who may read or act in a room, from its current state. */
#ifndef CLIENT_ROOM_ACCESS_H
#define CLIENT_ROOM_ACCESS_H

#include <stdbool.h>

#include "homeserver/db/db.h"
#include "rooms/rooms.h"

/* user's current membership in room ("join", "invite", "leave", "ban",
 * "knock"), "" when none; NULL on a database error. */
const char *client_membership(db_conn *c, const char *room_id, const char *user_id, char *buf,
                              size_t n, hs_err *err);

/* 0 when user is joined; else -1 with 403 M_FORBIDDEN (also for rooms we
 * don't know, so the answer leaks nothing). */
int client_require_joined(db_conn *c, const char *room_id, const char *user_id, hs_err *err);

/* The rooms user is joined to (malloc'd array of malloc'd IDs). */
int client_joined_rooms(db_conn *c, const char *user_id, char ***ids, size_t *n, hs_err *err);

/* What a user may read of a room (Synapse's check_user_in_room_or_world_
 * readable): while joined, up to now; after leaving or being banned, up to
 * that membership event, unless they forgot the room since; never in the
 * room (or only invited or knocking, or forgotten), up to now if its current
 * history visibility is world_readable (peeking);
 * else nothing. Within that, history visibility still applies per event. */
typedef struct client_room_view {
    char membership[16];   /* "join", "leave" or "ban"; "" when peeking */
    char member_event[256]; /* that membership event's ID ("" when peeking) */
    long long horizon;     /* the highest stream position readable */
    bool peeking;
} client_room_view;

/* 0 with *v filled, or -1 with 403 M_FORBIDDEN (not readable, also for
 * rooms we don't know) or a database error. */
int client_room_view_of(db_conn *c, const char *room_id, const char *user_id,
                        client_room_view *v, hs_err *err);

/* The room's state as the view sees it: the current state, or the state at
 * the membership event after leaving. Fills out; 0 or -1 with err. */
int client_room_view_state(db_conn *c, const char *room_id, const client_room_view *v,
                           room_state_map *out, hs_err *err);

#endif
