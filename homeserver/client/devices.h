/* devices.h — a user's devices: created at login and registration, listed,
 * renamed and deleted through /devices.
 *
 * Deleting a device deletes its access and refresh tokens (foreign keys
 * cascade). Everything else tied to a device — its end-to-end keys, its
 * to-device messages, its pushers — should hang off the devices table with
 * ON DELETE CASCADE too, or be cleaned up in client_devices_delete, the one
 * place devices are deleted from. */
#ifndef CLIENT_DEVICES_H
#define CLIENT_DEVICES_H

#include <stddef.h>

#include "homeserver/http/http.h"

#define CLIENT_DEVICE_NAME_MAX 100 /* Synapse's limit, in characters */

/* Ten random capital letters, as Synapse makes them. */
void client_device_random_id(char out[11]);

/* Create the device if new (named display_name, may be NULL), else keep it
 * and revoke its old tokens, as the spec asks when a client logs in again
 * with the same device ID. In the caller's transaction. 1 when the device
 * is new, 0 when it existed, -1 with err. */
int client_device_upsert(db_conn *c, const char *user_id, const char *device_id,
                         const char *display_name, hs_err *err);

/* Delete these devices of user_id (unknown ones are skipped) and everything
 * hanging off them. ids NULL deletes every device of the user except
 * keep_device_id (may be NULL: all of them). The IDs really deleted are
 * appended to `deleted` (a JSON array; may be NULL). In the caller's
 * transaction; after the COMMIT, pass them to client_devices_changed. */
int client_devices_delete(db_conn *c, const char *user_id, const char *const *ids, size_t n,
                          const char *keep_device_id, json_t *deleted, hs_err *err);

/* After a COMMIT that created or deleted devices of user_id (device_ids: a
 * JSON array of IDs): record the device-list change so the users sharing a
 * room with them re-query their keys (client_e2ee_devices_changed). Takes
 * its own connection; failures are logged. */
void client_devices_changed(hs_server *srv, const char *user_id, const json_t *device_ids);

#endif
