/* partial_rooms.h — what /sync and sliding sync show of a room joined with
 * partial state ("faster joins", MSC3706; federation/partial_state.c), as
 * Synapse does.
 *
 * Until its resync completes, such a room's state lacks most member events.
 * A /sync that does not lazy-load members would hand the client a member
 * list it keeps as complete, and never correct it: the room is left out of
 * that /sync (initial and incremental) as if not joined yet, and the first
 * incremental sync after the resync sends it as newly joined, with its full
 * state and a fresh timeline. A lazy-loading client gets the room at once:
 * the members it needs are the timeline's senders, whose member events came
 * with their events' auth events. Sliding sync leaves the room out of the
 * lists and subscriptions whose required_state needs members we may lack.
 *
 * Internal to homeserver/client. The decisions are pure functions
 * (tests/unit); client_partial_senders reads the database. */
#ifndef CLIENT_PARTIAL_ROOMS_H
#define CLIENT_PARTIAL_ROOMS_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/db/db.h"
#include "rooms/rooms.h"

typedef enum sync_partial_view {
    SYNC_PARTIAL_SHOW,          /* as any joined room */
    SYNC_PARTIAL_HIDE,          /* left out: its state was partial at the token */
    SYNC_PARTIAL_NEWLY_JOINED,  /* its full state came within (since, to]: all of it */
} sync_partial_view;

/* How /sync shows a joined room. partial: marked partial now (sql/018);
 * done_pos: the events position at which its last resync committed
 * (sql/021), 0 if it never had one; since < 0 on an initial sync; to: the
 * events position of next_batch. A resync that committed after `to` was
 * taken counts as not done yet, so the next sync sees it within its span. */
sync_partial_view sync_partial_view_of(bool lazy_load_members, bool partial, long long done_pos,
                                       long long since, long long to);

/* Whether a sliding sync room config's required_state (array of
 * [type, state_key]) needs state a partial-state room may lack, as Synapse's
 * RoomSyncConfig.must_await_full_state: every state ("*", "*"), or the
 * member event of a user not of server_name. "$ME" and "$LAZY" are served
 * by the partial state. Unlike Synapse (which lets it through), every
 * member ("m.room.member", "*") needs the full state too: that is the
 * incomplete member list this is here to avoid. */
bool ss_needs_full_state(const json_t *required_state, const char *server_name);

/* Lazy-loaded members of a room with partial state: the member events of
 * the timeline's senders that `state` lacks, taken from the timeline events'
 * own auth events, so a lazy-loading client still gets the member event of
 * everyone it sees speak (Synapse: _find_missing_partial_state_memberships).
 * Appended to ids (room for json_array_size(timeline) more is the
 * caller's); the strings are the caller's to free, in *owned (*n_owned).
 * Nothing when the room is not partial. 0, or -1 with err. */
int client_partial_senders(db_conn *c, const char *room_id, const room_state_map *state,
                           const json_t *timeline, const char **ids, size_t *n, char ***owned,
                           size_t *n_owned, hs_err *err);

#endif
