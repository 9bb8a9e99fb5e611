/* store.h — rooms in PostgreSQL: events, the DAG, state groups, current state.
 *
 * Every function runs on the caller's connection, so a caller can persist a
 * batch of events and everything it implies in one transaction (db_txn). */
#ifndef ROOM_STORE_H
#define ROOM_STORE_H

#include <stdbool.h>

#include "event.h"
#include "homeserver/db/db.h"
#include "state_map.h"

/* A delta chain longer than this ends in a new snapshot. */
#define ROOM_STATE_MAX_CHAIN 100

/* ---- state groups ---- */

/* Load the full state of a group into out (cleared first). */
int room_state_group_load(db_conn *c, long long group, room_state_map *out, hs_err *err);

/* Store `state` as a group of room_id: a delta over `parent` (whose full state
 * is parent_state) when that is small, else a snapshot. parent 0 / NULL state:
 * always a snapshot. Returns the new group's ID, parent itself when the states
 * are equal, or -1 with err. */
long long room_state_group_store(db_conn *c, const char *room_id, long long parent,
                                 const room_state_map *parent_state,
                                 const room_state_map *state, hs_err *err);

/* A group that is parent with (type, state_key) set to event_id: the state
 * after a state event. Never loads the parent's state. */
long long room_state_group_add_one(db_conn *c, const char *room_id, long long parent,
                                   const char *type, const char *state_key,
                                   const char *event_id, hs_err *err);

/* ---- events ---- */

typedef struct room_persist_item {
    const room_event *ev;
    bool outlier;                      /* state unknown: only the event and its auth edges */
    bool soft_failed;                  /* stored, but never an extremity or current state */
    const char *rejected_reason;       /* NULL: accepted */
    const room_state_map *state_before; /* NULL: the state after its single prev event */
    long long state_before_group;      /* > 0: this stored group is the state before */
    long long stream_ordering;         /* > 0: reserved with db_stream_reserve; 0: take one */
    /* An event built on the whole current state: this transaction locked
     * the room, its prev_events are all the forward extremities and
     * state_before_group is the current group. Then it simply becomes the one
     * extremity and the current state moves by it alone (no re-reads). */
    bool extends_current;
    bool known_new; /* certainly not stored yet (a local event just built) */
    /* History pulled by backfill (stream_ordering < 0, from the backfill
     * sequence): stored with its state, but it is older than the room's
     * present, so it neither moves the forward extremities nor the current
     * state. */
    bool history;
} room_persist_item;

/* Persist events in order, in the caller's transaction: rows, DAG edges,
 * state groups before and after each, forward extremities and current state
 * (resolved over the extremities when the DAG forks). An event already stored
 * is skipped (an outlier being de-outliered is updated). */
int room_store_persist(db_conn *c, const room_persist_item *items, size_t n, hs_err *err);

/* Insert the rooms row of a create event: 1 when this transaction made it,
 * 0 when the room exists already (waiting for a concurrent creator to commit
 * or roll back, as the unique index does). */
int room_store_claim_room(db_conn *c, const room_event *create, hs_err *err);

/* The stored event, parsed (caller frees), ev->rejected set; NULL with
 * 404 M_NOT_FOUND when unknown. */
room_event *room_store_get_event(db_conn *c, const char *event_id, hs_err *err);

/* The room's version, or NULL with 404 M_NOT_FOUND for an unknown room. */
const room_version *room_store_room_version(db_conn *c, const char *room_id, hs_err *err);

/* State before (after = false) or after an event. 404 M_NOT_FOUND for an
 * unknown event; 404 too for an outlier (its state is not known). */
int room_store_state_at(db_conn *c, const char *event_id, bool after, room_state_map *out,
                        hs_err *err);

/* The state after a set of events: the resolution (per v) of the states
 * after each, i.e. the state before an event with these prev_events. */
int room_store_state_after_events(db_conn *c, const room_version *v, const char *const *ids,
                                  size_t n, room_state_map *out, hs_err *err);

/* Resolve states given as maps (per v) over the stored events they name:
 * for states not all stored as groups, such as one another server sent. */
int room_store_resolve_states(db_conn *c, const room_version *v,
                              const room_state_map *const *states, size_t n,
                              room_state_map *out, hs_err *err);

/* The room's current state group (0 if none yet), locking the room's row
 * until the transaction ends so local events are built one at a time; its
 * version too when v is not NULL. */
long long room_store_lock_room(db_conn *c, const char *room_id, const room_version **v,
                               hs_err *err);

/* The room's one forward extremity and its depth, as the room's row records
 * it (sql/024); not known when the extremities may be several. And whether
 * the current state names a Policy Server (m.room.policy), which most rooms
 * don't: then no local event needs one's signature. And the state stamp. */
typedef struct room_head {
    bool known;
    char event_id[256];
    long long depth;
    bool has_policy;
    long long state_stamp; /* moves with every change of current_state (sql/025) */
} room_head;

/* Forget the room's forward extremities and current state group (the room
 * must be locked): what a server knows of a room after its last user left
 * is stale, so a join through another server starts from the state that
 * server gives, as for a room never joined (Synapse drops both when its
 * last user leaves). The current_state rows stay until that join's state
 * rewrites them in the same transaction. */
int room_store_forget_current(db_conn *c, const char *room_id, hs_err *err);

/* room_store_lock_room, and the head read with the lock. */
long long room_store_lock_room_head(db_conn *c, const char *room_id, const room_version **v,
                                    room_head *head, hs_err *err);

/* Lock several rooms at once (in room ID order) and read each one's head:
 * for room_ids[i], current[i] is its current state group (0: none yet; -1:
 * an unknown room or version), v[i] its version (may be NULL: not wanted),
 * heads[i] its head (NULL: not wanted). */
int room_store_lock_room_heads(db_conn *c, const char *const *room_ids, size_t n,
                               long long *current, const room_version **v, room_head *heads,
                               hs_err *err);

/* Send room_store_lock_room's statement ahead (db_prefetch). */
void room_store_prefetch_head(db_conn *c, const char *room_id);

/* Send room_store_lock_room_heads's statement ahead (db_prefetch). */
void room_store_prefetch_heads(db_conn *c, const char *const *room_ids, size_t n);

/* A room's version as room_store_lock_room last read it in this process (a
 * room's version never changes), or NULL. */
const room_version *room_store_known_version(const char *room_id);

/* The stored events with these IDs, parsed, in the same order (out[i] for
 * ids[i]; caller frees each), in one query; 404 M_NOT_FOUND naming the
 * first one missing (then nothing is returned). */
int room_store_get_events(db_conn *c, const char *const *ids, size_t n, room_event **out,
                          hs_err *err);

/* The events at these (type, state_key) pairs of the room's current state,
 * in one query: out[i] for pair i (caller frees), NULL where there is none. */
int room_store_current_events(db_conn *c, const char *room_id, const char *const *types,
                              const char *const *state_keys, size_t n, room_event **out,
                              hs_err *err);
void room_store_current_events_prefetch(db_conn *c, const char *room_id,
                                        const char *const *types, const char *const *state_keys,
                                        size_t n);

/* The event at (type, state_key) in the room's current state, parsed (caller
 * frees); NULL with err->status 404 when there is none. One query. */
room_event *room_store_current_event(db_conn *c, const char *room_id, const char *type,
                                     const char *state_key, hs_err *err);

/* The room's current state. */
int room_store_current_state(db_conn *c, const char *room_id, room_state_map *out, hs_err *err);

/* Forward extremities (malloc'd array of malloc'd IDs) and the highest depth
 * among them, for building the next event's prev_events and depth. */
int room_store_extremities(db_conn *c, const char *room_id, char ***ids, size_t *n,
                           long long *max_depth, hs_err *err);

/* The auth chain of a set of events: every event reachable through
 * auth_events, computed in the database (never loading the room). */
int room_store_auth_chain(db_conn *c, const char *const *ids, size_t n, char ***out,
                          size_t *n_out, hs_err *err);

void room_store_free_ids(char **ids, size_t n);

/* A room joined with partial state (state_rebase.c): full_before is the
 * complete state before our join join_event_id, which replaces the partial
 * one; every timeline event after the join gets its state groups again (in
 * stream order, from its prev events), and the current state is recomputed
 * over the forward extremities. Verdicts are kept. Locks the room; run it
 * in the caller's transaction. 0, or -1 with err. */
int room_store_rebase_state(db_conn *c, const char *join_event_id,
                            const room_state_map *full_before, hs_err *err);

#endif
