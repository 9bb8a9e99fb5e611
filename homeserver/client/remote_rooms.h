/* remote_rooms.h — rooms this server is not in, as the Client-Server API
 * meets them: joining, knocking on or leaving a room of another server,
 * inviting a user of another server, another server's room aliases.
 *
 * Those need the Server-Server API, which sits above this layer
 * (federation/ calls the client areas when events arrive, not the other way
 * round), so federation installs these hooks at start-up, as the HTTP layer
 * gets its X-Matrix authenticator. Without them (a build or test without
 * federation) rooms of other servers answer 404 as before. */
#ifndef CLIENT_REMOTE_ROOMS_H
#define CLIENT_REMOTE_ROOMS_H

#include <jansson.h>

#include "homeserver/http/http.h"
#include "rooms/rooms.h"

typedef struct client_remote_rooms {
    /* Join (membership "join") or knock ("knock") user_id, a local user, on
     * room_id through the first of servers that helps (make_*, send_*);
     * content is the membership content to send (displayname, avatar_url,
     * reason). A join stores the room's state: the room is then this
     * server's too. 0, or -1 with err (the last server's answer). */
    int (*join)(hs_server *srv, const char *membership, const char *user_id, const char *room_id,
                const char *const *servers, size_t n_servers, const json_t *content, hs_err *err);
    /* Leave a room this server is not in: reject an invite, retract a knock
     * (make_leave/send_leave through the inviting server or the room's).
     * 1 done, 0 when user_id has no such membership of room_id, -1 with err. */
    int (*leave)(hs_server *srv, const char *user_id, const char *room_id, const json_t *content,
                 hs_err *err);
    /* Servers worth asking to join room_id for user_id beyond the client's:
     * who invited them (new array). */
    json_t *(*join_candidates)(hs_server *srv, const char *user_id, const char *room_id);
    /* ev, stored in the caller's (uncommitted) transaction, invites a user of
     * another server: that server signs it (PUT /invite/v2) and the signed
     * copy replaces the stored one. -1 with err rolls the invite back. */
    int (*invite)(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err);
    /* #alias:other.server → room ID (malloc'd) and the servers to join
     * through (new array), from that server's directory. */
    int (*alias)(hs_server *srv, const char *alias, char **room_id, json_t **servers, hs_err *err);
    /* A room joined over federation whose timeline starts after its
     * beginning: pull up to limit older events from a server in it (GET
     * /backfill), stored as history (negative positions, current state
     * untouched). Returns how many were stored (0: nothing older to be had
     * or nobody answered), -1 with err for a database failure. */
    int (*backfill)(hs_server *srv, const char *room_id, int limit, hs_err *err);
    /* A room joined with partial state (its member list still being
     * fetched): wait up to timeout_ms for the full state. 1 it is there (or
     * never was partial), 0 timed out, -1 database error. */
    int (*await_full_state)(hs_server *srv, const char *room_id, long timeout_ms);
    /* Is room_id's state partial? 1, 0, -1. */
    int (*is_partial)(db_conn *c, const char *room_id, hs_err *err);
    /* The servers to join room_id through, for one of our aliases: this
     * one first, then those with a member joined, and during a partial-state
     * join those its answer listed (new array), or NULL with err. */
    json_t *(*alias_servers)(db_conn *c, const hs_server *srv, const char *room_id, hs_err *err);
} client_remote_rooms;

/* How long /members and /joined_members wait for a partial-state room's
 * full state before answering with the members known so far (Synapse waits
 * without limit; a client's request and our thread pool are not endless). */
#define CLIENT_PARTIAL_STATE_WAIT_MS 10000L

/* Wait for room_id's full state as above (no-op without the hooks). */
void client_await_full_state(hs_server *srv, const char *room_id);
/* Is room_id's state partial (0 without the hooks)? 1, 0, -1. */
int client_room_is_partial(db_conn *c, const char *room_id, hs_err *err);

void client_remote_rooms_set(const client_remote_rooms *ops);
/* The installed hooks, or NULL. */
const client_remote_rooms *client_remote_rooms_get(void);

/* Is a local user joined to room_id (may it send there itself)? 1, 0, -1. */
int client_room_has_local_member(db_conn *c, const hs_server *srv, const char *room_id,
                                 hs_err *err);

#endif
