/* presence.h — users' presence (online, unavailable, offline, a status
 * message, how long ago they were active): GET/PUT /presence/{userId}/status,
 * /sync's set_presence, and the presence events /sync delivers to the users
 * who share a room.
 *
 * Presence is stored (table presence) with the stream position of its last
 * visible change. Time-outs are applied by whoever touches presence next
 * (every /sync start and GET, at most once a second per process): a user no
 * /sync of theirs has started for presence.sync_online_timeout plus
 * CLIENT_PRESENCE_LONG_POLL_MS goes offline, an online user inactive for
 * presence.idle_timeout goes unavailable, and "currently_active" ends
 * presence.last_active_granularity after the last activity. With
 * presence.enabled false nothing is stored or sent. */
#ifndef CLIENT_PRESENCE_H
#define CLIENT_PRESENCE_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"

/* A /sync long-polls for up to its timeout (clients use 30 s); a user whose
 * sync is waiting is still connected, so the offline time-out counts from a
 * sync's start plus this much. A /sync that waits longer should call
 * client_presence_set again when it wakes. */
#define CLIENT_PRESENCE_LONG_POLL_MS 60000

/* /sync's set_presence (NULL: "online"), called as each /sync starts, on a
 * connection that is not inside a transaction. "offline" leaves presence
 * alone (as in Synapse: that client is not a sign of the user); "online"
 * brings an offline user online (an unavailable one stays so until activity);
 * "unavailable" sets it. Applies due time-outs first. 400 M_INVALID_PARAM for
 * another value. */
int client_presence_set(db_conn *c, hs_server *srv, const char *user_id, const char *state,
                        hs_err *err);

/* Forget the presence rows this process remembers writing (presence.c skips
 * a /sync's write that would change nothing): for a database replaced under
 * a running process, as the unit tests do. */
void client_presence_forget_known(void);

/* The user did something (sent an event, a receipt, typed): they are online,
 * currently active, and last active now. Same connection rule as above. */
int client_presence_bump_active(db_conn *c, hs_server *srv, const char *user_id, hs_err *err);

/* For /sync: the presence of user_id and of the users sharing a joined room
 * with them that changed in presence stream positions (from, to], appended to
 * events as m.presence events ({"type", "sender", "content": {"presence",
 * "last_active_ago", "status_msg", "currently_active"}}). For from 0 (an
 * initial sync) offline users are left out unless
 * presence.include_offline_users_on_sync. Nothing when presence is off. */
int client_presence_sync(db_conn *c, const char *user_id, long long from, long long to,
                         json_t *events, hs_err *err);

/* Whether presence is on (presence.enabled). */
bool client_presence_enabled(void);

/* For GET /events?room_id= (peeking): the presence of the room's joined
 * members that changed in presence stream positions (from, to], in the
 * same shape. Nothing when presence is off. */
int client_presence_room_sync(db_conn *c, const char *room_id, long long from, long long to,
                              json_t *events, hs_err *err);

/* For an incremental /sync: the presence of these users (members the user
 * newly shares a room with), whatever its stream position, appended to
 * events in the same shape (offline for one who never set any), but not for
 * users events already has. */
int client_presence_of(db_conn *c, const char *const *users, size_t n, json_t *events,
                       hs_err *err);

/* Presence of another server's user, from an m.presence EDU: stored as
 * their server reports it (state, status_msg, last active that long ago,
 * currently_active) with a presence stream position, waking the users who
 * share a room with them. Their server refreshes it; without news for 30
 * minutes (Synapse's federation time-out) the usual sweep takes them
 * offline. Nothing when presence is off. Same connection rule as above. */
int client_presence_set_remote(db_conn *c, hs_server *srv, const char *user_id,
                               const char *state, const char *status_msg,
                               long long last_active_ago, bool currently_active, hs_err *err);

#endif
