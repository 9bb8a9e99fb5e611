/* room_membership_remote.h — membership changes another server makes for
 * us (room_membership_remote.c), for room_membership.c and aliases.c. */
#ifndef CLIENT_ROOM_MEMBERSHIP_REMOTE_H
#define CLIENT_ROOM_MEMBERSHIP_REMOTE_H

#include <jansson.h>

#include "homeserver/http/http.h"

/* Must a membership change in room_id go through another server (no local
 * user is joined to it, and federation is there to ask)? 1 yes, 0 no, -1. */
int client_room_local_or_remote(hs_req *r, const char *room_id, hs_err *err);

/* Join ("join") or knock ("knock") r's user on room_id through another
 * server: the client's ?via= / ?server_name=, then extra_servers (from an
 * alias; may be NULL), then the inviter's and the room ID's servers. The
 * request's "reason" goes into the event, and a join carries the user's
 * display name and avatar. 0, or -1 with err (404 M_NOT_FOUND: no server to
 * ask; else the last server's answer). */
int client_room_remote_membership(hs_req *r, const char *membership, const char *room_id,
                                  const json_t *extra_servers, hs_err *err);

/* Join r's user to room_id, a room we are in but whose join we may not
 * make (a restricted room none of our members may invite to, channels.h),
 * through exactly servers (the servers whose members may), with content as
 * built for a local join. 0, or -1 with err (the last server's answer). */
int client_room_remote_join_through(hs_req *r, const char *room_id, const json_t *servers,
                                    const json_t *content, hs_err *err);

/* A join's own content from the request body (POST /join, as Synapse takes
 * it: custom keys, a per-room displayname or avatar_url) over content, but
 * for the keys the server sets (membership, third_party_signed,
 * join_authorised_via_users_server; reason is checked by the caller). */
void client_join_content_from_body(const json_t *body, json_t *content);

/* Reject a remote invite or retract a remote knock of r's user in room_id.
 * 1 done, 0 when the user has no such membership (leave locally), -1. */
int client_room_remote_leave(hs_req *r, const char *room_id, hs_err *err);

/* #alias:other.server through that server's directory: the room ID
 * (malloc'd) and *servers (new array), or NULL with err. */
char *client_room_resolve_remote_alias(hs_req *r, const char *alias, json_t **servers, hs_err *err);

#endif
