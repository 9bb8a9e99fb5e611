/* policy_server.h — Policy Servers (spec v1.18, MSC4284): whether a room
 * uses one, and its signature on events.
 *
 * A room uses a Policy Server when its current state holds a valid
 * m.room.policy (empty state key; content.via a server name, content.
 * public_keys.ed25519 a string) and the via server has a joined member. Its
 * signature sits in signatures[via]["ed25519:policy_server"], over the
 * redacted event like any event signature, checked with the key from the
 * state event (never one fetched from the server). The m.room.policy state
 * event with empty state key itself is exempt.
 *
 * rooms/ makes no network calls: federation installs the asker
 * (room_policy_set_asker) that POSTs /_matrix/policy/v1/sign. */
#ifndef ROOMS_POLICY_SERVER_H
#define ROOMS_POLICY_SERVER_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/db/db.h"
#include "room_version.h"

#define ROOM_POLICY_KEY_ID "ed25519:policy_server"

typedef struct room_policy_server {
    char via[256];
    unsigned char key[32]; /* ed25519 public key from public_keys.ed25519 */
} room_policy_server;

/* Whether the room uses a Policy Server: 1 with *ps, 0 (none, an invalid
 * m.room.policy, via without a joined member, or via == own_server_name:
 * as in Synapse, this server is never a Policy Server), -1 with err. */
int room_policy_server_of(db_conn *c, const char *room_id, const char *own_server_name,
                          room_policy_server *ps, hs_err *err);

/* An m.room.policy content, if valid (via a server name, public_keys.
 * ed25519 the base64 of a 32-byte key, standard or URL-safe alphabet, as
 * Synapse takes it): true with *ps filled. */
bool room_policy_parse(const json_t *content, room_policy_server *ps);

/* The event the Policy Server never signs: m.room.policy with state key "". */
bool room_policy_exempt(const json_t *event);

/* Whether event carries a valid signature of ps. */
bool room_policy_signed(const room_version *v, const json_t *event, const room_policy_server *ps);

/* Asks via's Policy Server to sign pdu (federation format). 0 with *answer,
 * its 200 body ({via: {key_id: signature}}); -1 with err: the Policy
 * Server's own error as it sent it (status, errcode, error: the spec wants it
 * passed to the client verbatim) or 502 M_UNKNOWN when it was unreachable. */
typedef int (*room_policy_asker)(void *arg, const char *via, const json_t *pdu, json_t **answer,
                                 hs_err *err);
void room_policy_set_asker(room_policy_asker fn, void *arg);

/* Ask ps to sign event and add the signature it returns to event (other
 * signatures kept, even if via is the event's origin). 0 when event now
 * holds a valid ps signature; -1 with err: the Policy Server's error, 502
 * when unreachable or no asker is installed, 403 M_FORBIDDEN when what it
 * answered is not a valid signature. */
int room_policy_sign(const room_version *v, json_t *event, const room_policy_server *ps,
                     hs_err *err);

/* For an event this server is about to persist: if its room uses a Policy
 * Server, have it signed (room_policy_sign). A caller that knows the room's
 * current state has no m.room.policy (room_head.has_policy) need not ask. 1 signed, 0 exempt or no Policy
 * Server (or no asker installed: the event goes unsigned), -1 with err: the
 * event must not be sent. */
int room_policy_sign_local(db_conn *c, const room_version *v, json_t *event,
                           const char *own_server_name, hs_err *err);

#endif
