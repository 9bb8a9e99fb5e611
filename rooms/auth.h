/* auth.h — the authorization rules of every room version.
 *
 * The check is pure: the caller supplies the state to check against (the auth
 * events, or the state before the event, or the current state) through a
 * lookup callback, so the same code serves persisting, soft-failure checks and
 * state resolution's iterative auth checks. */
#ifndef ROOM_AUTH_H
#define ROOM_AUTH_H

#include "event.h"

/* Return the event of (type, state_key) in the state being checked, or NULL. */
typedef const room_event *(*room_state_lookup)(void *ctx, const char *type, const char *state_key);

/* Is ev allowed given the state reached through lookup? 0 if allowed; else -1
 * with 403 M_FORBIDDEN and the rule that failed in err->msg.
 * For create events lookup is not consulted. */
int room_auth_check(const room_event *ev, room_state_lookup lookup, void *ctx, hs_err *err);

/* The (type, state_key) pairs ev's auth_events must be drawn from, per the
 * spec's "auth events selection". Fills up to max pairs; returns the count. */
typedef struct room_state_key {
    const char *type;
    const char *state_key;
} room_state_key;
size_t room_auth_types_for_event(const room_version *v, const json_t *event,
                                 room_state_key *out, size_t max);

/* The power level of user in the state (creators of a v12 room: INT64_MAX). */
long long room_user_power_level(const room_version *v, const char *user_id,
                                room_state_lookup lookup, void *ctx);

#endif
