/* register.h — creating accounts: what /register, shared-secret
 * registration and the admin commands share. */
#ifndef CLIENT_REGISTER_H
#define CLIENT_REGISTER_H

#include <stdbool.h>

#include "homeserver/http/http.h"

/* argon2id hash of password (malloc'd), or NULL with 500. */
char *client_hash_password(const char *password, hs_err *err);

/* May a new account take this (lower-case) localpart? Synapse's rules: the
 * spec's grammar, no leading '_', not all digits (generated IDs are), not
 * taken — unless it is allow_existing (a full user ID, may be NULL).
 * 0, or -1 with 400 M_INVALID_USERNAME / M_USER_IN_USE. */
int client_check_new_localpart(db_conn *c, const char *localpart, const char *server_name,
                               const char *allow_existing, hs_err *err);

/* Insert the account (password_hash may be NULL: no password login) and its
 * profile, display name defaulting to the localpart. In the caller's
 * transaction; 400 M_USER_IN_USE if the ID is taken. */
int client_account_create(db_conn *c, const char *user_id, const char *password_hash, bool admin,
                          bool guest, const char *displayname, hs_err *err);

/* After a registration's COMMIT made a device: tell the device lists (session
 * is the /register answer, with user_id and device_id). */
void client_announce_device(hs_server *srv, const json_t *session);

/* GET/POST /_synapse/admin/v1/register (register_admin.c). */
void client_shared_secret_routes(hs_router *rt);

#endif
