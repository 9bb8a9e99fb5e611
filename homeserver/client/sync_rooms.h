/* sync_rooms.h — the "rooms" part of /sync: join, invite, knock, leave. */
#ifndef CLIENT_SYNC_ROOMS_H
#define CLIENT_SYNC_ROOMS_H

#include <jansson.h>
#include <stdbool.h>

#include "filters.h"
#include "homeserver/db/db.h"

typedef struct sync_params {
    const char *user_id;
    const char *device_id;
    long long since;          /* events position of the since token; -1: initial sync */
    long long to;             /* events position of next_batch */
    bool full_state;
    bool use_state_after;     /* v1.16: "state_after" instead of "state" */
    int timeline_limit;
    bool lazy_load_members;
    bool redundant_members;   /* the filter's include_redundant_members */
    bool include_leave;
    /* Set on a copy for one room an incremental sync shows as newly joined
     * (with since -1): its timeline is `limited` whatever it holds, as
     * Synapse marks it, so the client pages back from prev_batch. */
    bool newly_joined;
    const client_filter *filter;   /* room / timeline filters (may be NULL) */
    json_t *ignored;               /* m.ignored_user_list's ignored_users object, or NULL */
    /* Out, when not NULL: the rooms sent as newly joined because their full
     * state came within the span (partial_rooms.h), as keys of an object. */
    json_t *newly_full;
    /* Out, when not NULL: the joined rooms shown whole (initial sync,
     * full_state, newly joined), kept in the response even when the filters
     * leave their entry empty; the others' empty entries go (sync.c). */
    json_t *kept;
} sync_params;

/* Fill rooms ({"join":{}, "invite":{}, "knock":{}, "leave":{}}) and report
 * whether anything was added. joined_out receives the joined room IDs, to
 * wait on; the caller frees it. The first *n_shown are the rooms this sync
 * shows (for the other sections); the rest are held back because their
 * state is partial and the filter does not lazy-load members
 * (partial_rooms.h): their resync must still wake a waiting sync. */
int sync_rooms(db_conn *c, const sync_params *p, json_t *rooms, bool *any, char ***joined_out,
               size_t *n_joined, size_t *n_shown, hs_err *err);

/* Whether a joined room's entry carries any event (timeline, state,
 * ephemeral, account data): an incremental sync leaves out an entry that
 * carries none, as Synapse does (its unread counts alone are no news). */
bool client_sync_entry_has_events(const json_t *entry);

/* Send sync_rooms's first reads ahead (db_prefetch): p's user, since, to
 * and full_state must be set. */
void sync_rooms_prefetch(db_conn *c, const sync_params *p);

#endif
