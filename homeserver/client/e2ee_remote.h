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
 * users' /sync and /keys/changes see it, as it comes (federation checks
 * its prev_id first, device_list_resync.c). 0 (also when ignored), or -1
 * with err. */
int client_e2ee_remote_device_update(hs_server *srv, const char *origin, const json_t *content,
                                     hs_err *err);

/* What we know of a remote user's device list: 0 we share no room with
 * them (their updates are not for us), 1 we do but do not follow their
 * list, 2 we follow it and *stream_id is the last update applied (their
 * server's stream). -1 with err. */
int client_e2ee_remote_device_state(hs_server *srv, const char *user_id, long long *stream_id,
                                    hs_err *err);

/* After an update applied in order (its prev_id was ours): the user's list
 * is now at stream_id. 0, or -1 with err. */
int client_e2ee_remote_device_stream(hs_server *srv, const char *user_id, long long stream_id,
                                     hs_err *err);

/* A whole device list of user_id as their server answers GET
 * /user/devices ({user_id, stream_id, devices, master_key?,
 * self_signing_key?}, checked by the caller to be about user_id): it
 * replaces what we held (devices not in it are gone), is recorded as a
 * device-list change, and from now on the list is followed from its
 * stream_id. 0, or -1 with err (400 for an unusable answer). */
int client_e2ee_remote_devices_resynced(hs_server *srv, const char *user_id, const json_t *resp,
                                        hs_err *err);

/* Remote users of `users` ({user: [device IDs]}) whose lists we follow and
 * share a room with: /keys/query answers them from our tables (new
 * object, the same shape; the rest stays in users). NULL on error. */
json_t *client_e2ee_remote_followed(db_conn *c, json_t *users, hs_err *err);

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
