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

/* A free generated (numeric) user ID, malloc'd; NULL with err. */
char *client_generate_user_id(db_conn *c, const char *server_name, hs_err *err);

/* ---- guests (register_guest.c) ---- */

/* POST /register?kind=guest. */
int client_register_guest(hs_req *r, json_t **out, hs_err *err);

/* The guest a /register request upgrades: from its guest_access_token, whose
 * account must be a live guest's, and whose localpart the request's username
 * (if any) must be. 0 with *guest the user ID (malloc'd) or NULL when the
 * request names no guest; -1 with 403 M_FORBIDDEN (or 400) otherwise. */
int client_guest_to_upgrade(hs_req *r, char **guest, hs_err *err);

/* 0 when params carry no username or the guest's localpart (any case);
 * else -1 with 403 M_FORBIDDEN. */
int client_guest_name_matches(const char *guest, const json_t *params, hs_err *err);

/* In the caller's transaction: the guest becomes a full account with this
 * password hash. -1 with 403 M_FORBIDDEN if it is no longer a guest. */
int client_guest_upgrade(db_conn *c, const char *guest, const char *password_hash, hs_err *err);

/* GET/POST /_synapse/admin/v1/register (register_admin.c). */
void client_shared_secret_routes(hs_router *rt);

#endif
