/* server_notices.h — the spec's Server Notices module as Synapse runs it:
 * with the config's server_notices block, the server's own user (the
 * "system user", @<system_mxid_localpart>:<server_name>, no account) keeps
 * one room per local user, tagged m.server_notice for them, and admins send
 * into it through Synapse's admin API or `pvyhs server-notice send`. */
#ifndef CLIENT_SERVER_NOTICES_H
#define CLIENT_SERVER_NOTICES_H

#include <jansson.h>

#include "config/config.h"
#include "homeserver/http/http.h"

/* The system user's ID (malloc'd), or NULL when server notices are off. */
char *client_server_notices_mxid(const cfg *c);

/* Send one notice to a local user: the notices room is made on the first
 * one (and its name, topic, avatar and the system user's profile follow the
 * config on later ones), the user invited (and joined with auto_join) unless
 * already invited or joined, then the event sent by the system user.
 * type NULL: m.room.message; state_key NULL: not a state event. The event's
 * ID in *event_id (malloc'd); 0, or -1 with err (400 when notices are off). */
int client_server_notice_send(hs_server *srv, const char *user_id, const char *type,
                              const char *state_key, const json_t *content, char **event_id,
                              hs_err *err);

/* A leave by user_id of room_id (POST /leave): refused with 403
 * M_CANNOT_LEAVE_SERVER_NOTICE_ROOM while it would reject an invite to a
 * notices room (Synapse's rule: the invite stays until joined; leaving after
 * joining is allowed). 0 when allowed, -1 with err otherwise. */
int client_server_notice_check_leave(hs_server *srv, const char *room_id, const char *user_id,
                                     hs_err *err);

/* POST /_synapse/admin/v1/send_server_notice and PUT …/{txnId}. */
void client_server_notices_routes(hs_router *rt);

#endif
