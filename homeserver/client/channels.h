/* channels.h — channels (rooms as families and teams see them): the four
 * kinds, encryption by default, the published room directory, room
 * summaries, spaces, restricted joins and the knock queue. What other client
 * areas and the `pvyhs channel` command call.
 *
 * The endpoints live in directory.c (/publicRooms, /directory/list/room),
 * room_summary.c (/room_summary), hierarchy.c (/hierarchy); the rules in
 * channel_policy.c, restricted_join.c and knock_queue.c. */
#ifndef CLIENT_CHANNELS_H
#define CLIENT_CHANNELS_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"

#define CLIENT_MEGOLM "m.megolm.v1.aes-sha2"

/* ---- other servers --------------------------------------------------------- */

/* fed_request's signature (federation.h): a signed request to another server.
 * The client layer may not call federation/ (which builds on it), so the
 * process that links both installs it at start-up (serve.c). Without it,
 * other servers' directories, spaces and rooms are out of reach (502). */
typedef int (*client_fed_request_fn)(hs_server *srv, const char *destination, const char *method,
                                     const char *path_and_query, const json_t *body, long *status,
                                     json_t **response, hs_err *err);
void client_channels_set_federation(client_fed_request_fn fn);

/* ---- createRoom --------------------------------------------------------- */

/* Adjust a new room's events (protos: [{type, state_key?, content}] in the
 * order createRoom sends them, before "sender" is set) to this server's
 * rules: adds m.room.encryption where encryption_enabled_by_default_for_room_type
 * or forbid_unencrypted_private_rooms want it, in Synapse's place (after the
 * initial_state events, before name, topic and invites); refuses (403
 * M_INVITE_BLOCKED) invites to local users who block them, and (403
 * M_FORBIDDEN) an explicitly unencrypted private room the admin forbids.
 * body is the request, preset the effective preset. 0, or -1 with err. */
int client_channel_create_hook(hs_server *srv, const char *preset, const json_t *body,
                               json_t *protos, hs_err *err);

/* Whether room_list_publication_rules let user_id publish room_id (with
 * these aliases) to the directory. Server admins always may; without rules
 * everyone may (the caller checks that the user moderates the room). */
bool client_directory_rules_allow(const cfg *c, const char *user_id, bool is_admin,
                                  const char *room_id, const char *const *aliases, size_t n);

/* ---- sending -------------------------------------------------------------- */

/* The checks a local client's event passes before it is built, in the
 * sending transaction (room_send.c): m.room.encryption never replaced by
 * another algorithm or removed (nor redacted) once set; with
 * forbid_unencrypted_private_rooms, an unencrypted room never made private;
 * no invite to a local user who blocks invites (v1.18), unless they knocked.
 * 0, or -1 with 403 M_FORBIDDEN / M_INVITE_BLOCKED. Events from other
 * servers never come here: they only answer to the auth rules. */
int client_channel_check_send(db_conn *c, const hs_server *srv, const char *room_id,
                              const json_t *proto, hs_err *err);

/* Does user_id (local) block invites (m.invite_permission_config with
 * default_action "block")? 1 yes, 0 no, -1 with err. /sync hides their
 * pending invites while it does. */
int client_invites_blocked(db_conn *c, const char *user_id, hs_err *err);

/* /versions unstable_features this area answers for: Element's
 * io.element.e2ee_forced.<preset> flags and org.matrix.msc3266 (room
 * summaries). New reference. */
json_t *client_channel_unstable_features(const cfg *c);

/* ---- joining and knocking ---------------------------------------------- */

/* A join into a restricted (or knock_restricted) room by a user who is not
 * invited: checks that user_id is joined to one of the rooms the join rules
 * allow and picks the local member who authorises the join (the one with
 * the highest power level able to invite), whom it names in the join's
 * content as join_authorised_via_users_server. Other joins are left alone.
 * 0; 1 when the join must go through another server although we are in
 * the room (no local member may invite, or the user may be in an allowed
 * room we are not in): *via (new array) then names the servers whose
 * members may invite, best first; or -1 with 403 M_FORBIDDEN (no allowed
 * room) / 400 M_UNABLE_TO_GRANT_JOIN (nobody in the room may invite). */
int client_channel_join_content(hs_server *srv, const char *room_id, const char *user_id,
                                json_t *content, json_t **via, hs_err *err);

/* rc_knocks: a knock by user_id into room_id. 0, or -1 with 429. */
int client_channel_knock_ratelimit(const hs_server *srv, const char *user_id,
                                   const char *room_id, hs_err *err);

/* The knock queue of a room: [{user_id, reason?, displayname?, ts,
 * event_id}] oldest first (new reference), or NULL with err. */
json_t *client_channel_knocks(db_conn *c, const char *room_id, hs_err *err);

/* The local joined member of room_id with the highest power level (ties:
 * the smallest user ID), malloc'd; NULL with 404 M_NOT_FOUND if none. */
char *client_channel_top_member(db_conn *c, const char *room_id, const char *server_name,
                                hs_err *err);

/* "!id:server" as is; "#alias:server" or a bare local alias through the
 * alias table. malloc'd, or NULL with 404 M_NOT_FOUND. */
char *client_channel_resolve(db_conn *c, const char *id_or_alias, const char *server_name,
                             hs_err *err);

#endif
