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

/* Rule 3 ("considering the event's auth_events"), for when the caller has
 * resolved ev->auth_events to the events themselves (auth[i], n of them, in
 * any order): no duplicate (type, state_key), only pairs the auth events
 * selection allows, none rejected (room_event.rejected), all of ev's room,
 * and an m.room.create among them before v12. 0 if fine; else -1 with 403
 * M_FORBIDDEN. Finding every cited event is the caller's part. */
int room_auth_check_auth_events(const room_event *ev, const room_event *const *auth, size_t n,
                                hs_err *err);

/* "Handling redactions": should redaction (an accepted m.room.redaction)
 * be applied to target, the event it redacts (ev->redacts)? From v3 when
 * the sender has the redact level in the state given by lookup (the state
 * before the redaction), or is on the same server as target's sender; in
 * v1–2 the auth rules already decided (redact level, or the event IDs'
 * domains). Always false across rooms or for a target it does not name. */
bool room_redaction_applies(const room_event *redaction, const room_event *target,
                            room_state_lookup lookup, void *ctx);

/* The power level of user in the state (creators of a v12 room: INT64_MAX). */
long long room_user_power_level(const room_version *v, const char *user_id,
                                room_state_lookup lookup, void *ctx);

#endif
