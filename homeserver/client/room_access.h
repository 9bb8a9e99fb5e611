/* room_access.h — who may read or act in a room, from its current state. */
#ifndef CLIENT_ROOM_ACCESS_H
#define CLIENT_ROOM_ACCESS_H

#include "homeserver/db/db.h"

/* user's current membership in room ("join", "invite", "leave", "ban",
 * "knock"), "" when none; NULL on a database error. */
const char *client_membership(db_conn *c, const char *room_id, const char *user_id, char *buf,
                              size_t n, hs_err *err);

/* 0 when user is joined; else -1 with 403 M_FORBIDDEN (also for rooms we
 * don't know, so the answer leaks nothing). */
int client_require_joined(db_conn *c, const char *room_id, const char *user_id, hs_err *err);

/* The rooms user is joined to (malloc'd array of malloc'd IDs). */
int client_joined_rooms(db_conn *c, const char *user_id, char ***ids, size_t *n, hs_err *err);

#endif
