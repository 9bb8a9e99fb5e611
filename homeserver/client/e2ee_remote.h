/* e2ee_remote.h — other servers' users' devices and keys, as their servers
 * push them over federation (EDUs of a /send transaction): device list
 * updates, cross-signing key updates and to-device messages for our users.
 * What other servers are asked (/user/keys/query, /user/devices) is not
 * here. */
#ifndef CLIENT_E2EE_REMOTE_H
#define CLIENT_E2EE_REMOTE_H

#include <jansson.h>

#include "homeserver/http/http.h"

/* m.device_list_update from origin: one device of one of origin's users
 * changed (keys given), or was deleted. Stored in e2e_device_keys when we
 * share a room with the user, and recorded as a device-list change so our
 * users' /sync and /keys/changes see it. prev_id chains are not followed:
 * an update is applied as it comes. 0 (also when ignored), or -1 with err. */
int client_e2ee_remote_device_update(hs_server *srv, const char *origin, const json_t *content,
                                     hs_err *err);

/* m.signing_key_update from origin: a user's master and/or self-signing
 * key, stored and recorded as a device-list change. 0, or -1 with err. */
int client_e2ee_remote_signing_key_update(hs_server *srv, const char *origin, const json_t *content,
                                          hs_err *err);

/* m.direct_to_device from origin: messages from one of origin's users to
 * our users' devices ("*": all of them), delivered once per (origin,
 * message_id). 0, or -1 with err. */
int client_e2ee_remote_to_device(hs_server *srv, const char *origin, const json_t *content,
                                 hs_err *err);

#endif
