/* state_lookup.h — a room_state_lookup over stored events, for auth checks.
 *
 * The auth rules ask for a handful of (type, state_key) pairs; this looks each
 * up on demand in a state map, in the room's current state, or among a fixed
 * set of events, loading and parsing each event once. */
#ifndef ROOM_STATE_LOOKUP_H
#define ROOM_STATE_LOOKUP_H

#include "auth.h"
#include "store.h"

typedef struct room_lookup {
    db_conn *c;
    const char *room_id;
    const room_state_map *map;      /* look here … */
    const room_event *const *set;   /* … or among these events … */
    size_t n_set;
    bool current;                   /* … or in the room's current state */
    bool stamped;                   /* current at state_stamp (read under the room's lock):
                                     * room_lookup_prefetch uses current_cache.c */
    long long state_stamp;
    room_event *loaded[16];         /* events loaded (owned) */
    size_t n_loaded;
    char *absent[17][2];            /* keys the prefetch found nothing at (owned) */
    size_t n_absent;
    hs_err err;                     /* the first database error, if any */
    bool failed;
} room_lookup;

/* The callback for room_auth_check; ctx is a room_lookup. */
const room_event *room_lookup_get(void *ctx, const char *type, const char *state_key);

/* For a lookup of the current state (l->current) about to authorise ev: load
 * the current events at every key ev's auth rules can ask for (its auth
 * events selection and the create event) in one query, so the lookups that
 * follow need none. 0, or -1 with l->failed and l->err. */
int room_lookup_prefetch(room_lookup *l, const room_version *v, const json_t *ev);

/* Send room_lookup_prefetch's query ahead (db_prefetch) without reading it. */
void room_lookup_prefetch_ahead(room_lookup *l, const room_version *v, const json_t *ev);

/* The current-state events of rooms between local sends (current_cache.c),
 * valid while the room's state stamp (sql/025, room_head.state_stamp) is the
 * one they were read at. has: some are kept for the room (so a send may skip
 * sending the auth events' read ahead). get: true when the pair is known at
 * stamp, with *out a copy of its event (caller frees) or NULL (none there).
 * put: keep a copy (ev NULL: nothing there). */
bool room_current_cache_has(const char *room_id);
bool room_current_cache_get(const char *room_id, long long stamp, const char *type,
                            const char *state_key, room_event **out);
void room_current_cache_put(const char *room_id, long long stamp, const char *type,
                            const char *state_key, const room_event *ev);

/* Free what the lookup loaded. */
void room_lookup_clear(room_lookup *l);

#endif
