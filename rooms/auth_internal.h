/* auth_internal.h — what auth.c, auth_membership.c and auth_power.c share:
 * one check in progress, the state it reads, and power-level arithmetic. */
#ifndef ROOM_AUTH_INTERNAL_H
#define ROOM_AUTH_INTERNAL_H

#include <limits.h>

#include "auth.h"

/* The power of a v12 room creator: above every integer a power-levels
 * event can hold (those are within ±(2^53−1) from room version 6). */
#define ROOM_PL_INFINITE LLONG_MAX

/* One authorization check in progress. create and power are the state's
 * m.room.create and m.room.power_levels events, fetched once up front. */
typedef struct room_auth {
    const room_event *ev;
    const room_version *v;
    room_state_lookup lookup;
    void *ctx;
    const room_event *create;
    const room_event *power;
    hs_err *err;
} room_auth;

#define ROOM_AUTH_REJECT(a, ...) hs_err_set((a)->err, 403, "M_FORBIDDEN", __VA_ARGS__)
/* A rejection for content no server can accept (a malformed power levels
 * event): the same verdict, told to a local client as 400 as Synapse does. */
#define ROOM_AUTH_REJECT_CONTENT(a, ...) hs_err_set((a)->err, 400, "M_BAD_JSON", __VA_ARGS__)

/* The state event (type, state_key) into *out (NULL if absent). An event of
 * another room in the state is refused (-1), whatever the caller's bug. */
int room_auth_fetch(room_auth *a, const char *type, const char *state_key,
                    const room_event **out);

/* user's membership in the state ("join", "ban" …) or NULL when none. */
int room_auth_membership(room_auth *a, const char *user, const char **out);

/* ---- auth_power.c ---- */

/* A power level value as the room version reads it: an integer, and before
 * v10 also a string holding one (" +050 ") or, before v6, a float
 * (truncated). false when val is none of these. */
bool room_pl_value(const room_version *v, const json_t *val, long long *out);

/* content[name] of the power-levels event, def when absent or unreadable. */
long long room_pl_named(const room_version *v, const room_event *power, const char *name,
                        long long def);

/* The power of user given the create and power-levels events (either NULL). */
long long room_pl_user(const room_version *v, const room_event *create, const room_event *power,
                       const char *user);

/* The level needed to send an event of this type (state or not). */
long long room_pl_required(const room_version *v, const room_event *power, const char *type,
                           bool is_state);

/* Is user a creator of the room: the create event's sender, or (v12) listed
 * in its additional_creators? */
bool room_is_creator(const room_event *create, const char *user);

/* The creator the rules of v1–v11 mean: content.creator before v11, the
 * sender from v11. NULL if the create event has none. */
const char *room_creator(const room_version *v, const room_event *create);

/* Rule "if type is m.room.power_levels" (10 in v12 numbering). */
int room_auth_power_levels(room_auth *a);

/* ---- auth_membership.c ---- */

/* Rule "if type is m.room.member" (5 in v12 numbering). */
int room_auth_member(room_auth *a);

#endif
