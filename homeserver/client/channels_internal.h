/* channels_internal.h — what the channel files share (room_summary.c,
 * hierarchy.c, directory.c, restricted_join.c), nothing else includes it. */
#ifndef CLIENT_CHANNELS_INTERNAL_H
#define CLIENT_CHANNELS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"

/* The summary of a room this server holds state for, as the room summary and
 * /hierarchy give it (room_id, room_version, name, topic, canonical_alias,
 * num_joined_members, avatar_url, join_rule, world_readable, guest_can_join,
 * room_type, encryption, allowed_room_ids; absent fields omitted). NULL with
 * 404 M_NOT_FOUND when the room is unknown. */
json_t *channel_summary(db_conn *c, const char *room_id, hs_err *err);

/* Does one of server_name's users belong to the room (joined)? Only then is
 * our copy of its state current. 1, 0, or -1 with err. */
int channel_host_joined(db_conn *c, const char *room_id, const char *server_name, hs_err *err);

/* May user_id (NULL: anonymous) see the room's summary? The spec's list for
 * /hierarchy: joined or invited, public or knockable join rules, restricted
 * with the user in an allowed room, or world_readable history. 1, 0, -1. */
int channel_accessible(db_conn *c, const char *room_id, const char *user_id, hs_err *err);

/* user_id's membership in room_id ("join", "leave", …), "" if none; NULL on
 * error. */
const char *channel_membership(db_conn *c, const char *room_id, const char *user_id, char *buf,
                               size_t n, hs_err *err);

/* Is user_id joined to at least one room named by a join rules "allow" list
 * (m.room_membership conditions)? 1, 0, -1. */
int channel_in_allowed_room(db_conn *c, const json_t *allow, const char *user_id, hs_err *err);

/* Does user_id belong to server_name? */
bool channel_is_local(const char *user_id, const char *server_name);

/* A GET or POST to another server through the installed federation request
 * (channels.h); path_and_query already escaped. 0 with *out, or -1: the
 * remote's own 4xx error passed on, else 502 M_UNKNOWN. */
int channel_fed(hs_server *srv, const char *server, const char *method, const char *path_and_query,
                const json_t *body, json_t **out, hs_err *err);

/* Percent-encoding for a path segment or query value (malloc'd). */
char *channel_escape(const char *s);

/* May server_name (a federation request's origin) see the room's summary?
 * Public or knockable join rules, world_readable history, one of its users
 * joined or invited, or joined to a room of a restricted room's allow list.
 * 1, 0, -1. */
int channel_accessible_to_server(db_conn *c, const char *room_id, const char *server_name,
                                 hs_err *err);

/* Synapse's test for a summary another server sent: open to all (join rule
 * public or knockable, or world_readable), or user_id (NULL: anonymous) is in
 * one of its allowed_room_ids, or may see it here anyway (an invite). */
int channel_remote_accessible(db_conn *c, const char *room_id, const json_t *room,
                              const char *user_id);

/* GET /_matrix/federation/v1/hierarchy/{room_id} from the first of (up to
 * three) via servers that answers: its response ({room, children,
 * inaccessible_children}), or NULL. */
json_t *channel_fed_hierarchy(hs_server *srv, const char *room_id, const json_t *via,
                              bool suggested_only);

/* Each file's routes, registered by client_channels_routes (directory.c). */
void channel_summary_routes(hs_router *rt);
void channel_hierarchy_routes(hs_router *rt);

#endif
