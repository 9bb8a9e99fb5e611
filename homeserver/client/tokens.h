/* tokens.h — the secrets a session is made of: access tokens with their
 * refresh tokens, m.login.token login tokens, and the hashing they share.
 *
 * Every token is 32 random bytes in URL-safe base64 behind a short prefix
 * that names its kind (pvy_ access, pvyr_ refresh, pvyl_ login, pvyo_
 * OpenID), shown to the client once; the database keeps SHA-256(token). */
#ifndef CLIENT_TOKENS_H
#define CLIENT_TOKENS_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"

/* A fresh token "<prefix><base64url of 32 random bytes>" (malloc'd). */
char *client_token_new(const char *prefix);

/* "\\x<hex of sha256(token)>" — the bytea literal the tables key on. */
#define CLIENT_TOKEN_HEX_LEN (2 + 64 + 1)
void client_token_hash_hex(const char *token, char out[CLIENT_TOKEN_HEX_LEN]);

/* Issue the tokens of a login or registration for an existing device, in the
 * caller's transaction, and add them to out: "access_token", and when
 * want_refresh and refreshable_access_token_lifetime allow it,
 * "refresh_token" and "expires_in_ms" (also set when
 * nonrefreshable_access_token_lifetime limits a plain token).
 * revokes_refresh_id: the refresh token the new access token's first use
 * revokes (0: none). 0 or -1 with err. */
int client_tokens_issue(db_conn *c, const cfg *cfg, const char *user_id, const char *device_id,
                        bool want_refresh, long long revokes_refresh_id, json_t *out,
                        hs_err *err);

/* What a successful login or registration does, in the caller's
 * transaction: create (or take over) the device — device_id NULL makes a new
 * random one — and issue its tokens, filling out with user_id, device_id,
 * home_server, access_token [, refresh_token, expires_in_ms]. *created (may
 * be NULL) tells whether the device is new: then, after the COMMIT, pass it
 * to client_devices_changed. 0 or -1 with err. */
int client_session_start(hs_server *srv, db_conn *c, const char *user_id, const char *device_id,
                         const char *device_name, bool refresh, json_t *out, bool *created,
                         hs_err *err);

/* POST /refresh's work, in the caller's transaction: check refresh_token
 * (401 M_UNKNOWN_TOKEN when unknown, superseded or expired), revoke the token
 * it replaced and any earlier answer to this same token, and issue a new
 * access token (and refresh token) into out. */
int client_tokens_refresh(db_conn *c, const cfg *cfg, const char *refresh_token, json_t *out,
                          hs_err *err);

/* Create an m.login.token for user_id valid for lifetime_ms. Returns the
 * token (malloc'd) or NULL with err. */
char *client_login_token_new(db_conn *c, const char *user_id, long long lifetime_ms,
                             hs_err *err);

/* Consume an m.login.token: returns its user (malloc'd) and deletes it, or
 * NULL with 403 M_FORBIDDEN when it is unknown, used or expired. */
char *client_login_token_use(db_conn *c, const char *token, hs_err *err);

#endif
