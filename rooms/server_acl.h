/* server_acl.h — m.room.server_acl: whether a room lets a server in. */
#ifndef ROOM_SERVER_ACL_H
#define ROOM_SERVER_ACL_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/db/db.h"

/* Does room_id's m.room.server_acl (current state) let server in? 1, 0, -1.
 * No ACL: yes. Globs match the host without its port, case-insensitively. */
int room_acl_allows(db_conn *c, const char *room_id, const char *server, hs_err *err);

/* The ACL decision for content (an m.room.server_acl content) and server:
 * IP literals (when allow_ip_literals is false), then deny, then allow. */
bool room_acl_content_allows(const json_t *content, const char *server);

/* host against a glob of '*' and '?', case-insensitive. */
bool room_acl_glob(const char *glob, const char *host);

#endif
