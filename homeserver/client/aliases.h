/* aliases.h — room aliases as other client areas need them. */
#ifndef CLIENT_ALIASES_H
#define CLIENT_ALIASES_H

#include "homeserver/http/http.h"

/* Before r's user sets m.room.canonical_alias to content in room_id: each
 * alias the event newly names ("alias" when it changed, "alt_aliases" not in
 * the current event) must point to room_id now, as the spec requires of a
 * server and Synapse checks (remote aliases through their server's
 * directory). 0, or -1 with 400 M_INVALID_PARAM (malformed) or M_BAD_ALIAS
 * (missing, or another room's). */
int client_canonical_alias_check(hs_req *r, const char *room_id, const json_t *content,
                                 hs_err *err);

#endif
