/* state_res.h — state resolution: the state of a room where its DAG forks.
 *
 * The room state before an event is the resolution of the states after each
 * of its prev_events. This is the algorithm of the room version's
 * `state_res` property: v1 (room version 1), v2 (room versions 2–11) and v2.1
 * (room version 12: iterative auth checks start from an empty map, and the
 * conflicted state subgraph joins the full conflicted set).
 *
 * Pure: no database, no HTTP. Events come from a fetch callback, one ID at a
 * time, so the caller decides where they live (a request's in-flight events,
 * a cache, the database); each ID is fetched at most once per resolution.
 *
 * Cost: v2/v2.1 need the auth chains of every state event (the spec's auth
 * difference), so a resolution fetches the room's state and its auth
 * ancestors once, then works over integers: two forks of a 20,000-event
 * state with 1,000 conflicts resolve in about 20 ms (tests/bench/
 * bench_state_res.c). A database-backed source should give a prefetch hook
 * (room_state_resolve_batched): one query per level of the walks, not one
 * per event. Identical states cost no fetch at all; v1 fetches
 * only the conflicted events and those the auth rules look up. */
#ifndef ROOM_STATE_RES_H
#define ROOM_STATE_RES_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"
#include "room_version.h"
#include "state_map.h"

/* Fetch the event with this ID.
 *
 * Return 0 with *ev set to the event, or to NULL when this server does not
 * have it (the algorithm then treats the ID as absent, as Synapse and Ruma
 * do). ev->rejected must say whether the event was rejected: rejected events
 * are never used as auth events (v2 spec, "Rejected events"). Return -1 with
 * err filled for a failure that must abort the resolution (database down).
 *
 * The event must stay valid until room_state_resolve returns. Every event
 * returned must belong to the room being resolved: the caller's ctx knows the
 * room (the auth rules refuse state from another room, nothing more). */
typedef int (*room_event_fetch)(void *ctx, const char *event_id, const room_event **ev,
                                hs_err *err);

/* Optional companion of a fetch callback: IDs the algorithm is about to
 * fetch (a whole level of an auth chain walk, or v1's conflicted events), so
 * a database-backed source can load them in one query and answer the fetch
 * calls that follow from memory. IDs it cannot find are simply not loaded.
 * Return 0, or -1 with err filled to abort the resolution. */
typedef int (*room_event_prefetch)(void *ctx, const char *const *event_ids, size_t n,
                                   hs_err *err);

/* Resolve n_states state maps per v->state_res into out (cleared first; it
 * must not be one of states). With one state, out is a copy of it; with none,
 * out is empty.
 *
 * Returns 0, or -1 with err filled: 500 M_UNKNOWN when out of memory, or
 * whatever fetch reported. Malformed or missing events never fail the call:
 * they are left out as the algorithms prescribe. */
int room_state_resolve(const room_version *v, const room_state_map *const *states,
                       size_t n_states, room_event_fetch fetch, void *ctx,
                       room_state_map *out, hs_err *err);

/* room_state_resolve with a prefetch hook (may be NULL) sharing fetch's ctx. */
int room_state_resolve_batched(const room_version *v, const room_state_map *const *states,
                               size_t n_states, room_event_fetch fetch,
                               room_event_prefetch prefetch, void *ctx, room_state_map *out,
                               hs_err *err);

#endif
