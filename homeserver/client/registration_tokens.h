/* registration_tokens.h — tokens that let someone register
 * (m.login.registration_token), made by the admin with
 * `pvyhs registration-token add`.
 *
 * Only SHA-256(token) is stored, with its first characters as a hint for
 * `list`. A token's uses are counted when a registration completes; a UIA
 * session that passed the token stage but has not registered yet holds a
 * pending use (for 48 hours, the session's life), so a one-use token can't be
 * spent twice by two sign-ups in flight. */
#ifndef CLIENT_REGISTRATION_TOKENS_H
#define CLIENT_REGISTRATION_TOKENS_H

#include <stdbool.h>
#include <stddef.h>

#include "homeserver/core/err.h"
#include "homeserver/db/db.h"

#define CLIENT_REGTOKEN_MAX_LEN 64 /* the spec's limit */

/* Whether token is a valid registration token string: 1-64 characters of
 * the opaque identifier grammar [A-Za-z0-9._~-]. */
bool client_regtoken_syntax_ok(const char *token);

/* Is token usable now (known, not expired, completed + pending < uses)?
 * With lock, the token's row stays locked until the caller's transaction
 * ends, so the caller can reserve a use without a race. 1 yes, 0 no, -1 err. */
int client_regtoken_usable(db_conn *c, const char *token, bool lock, hs_err *err);

/* Count one completed registration for the token with this hash ("\\x…"). */
int client_regtoken_complete(db_conn *c, const char *hash_hex, hs_err *err);

/* Add a token: token NULL makes a random one of 16 characters; uses < 0 is
 * unlimited; expiry_ts 0 never expires. Returns the token (malloc'd) or NULL
 * with err (400 M_INVALID_PARAM for a malformed or an existing token). */
char *client_regtoken_add(db_conn *c, const char *token, int uses, long long expiry_ts,
                          hs_err *err);

typedef struct client_regtoken_info {
    char hint[8];          /* first characters, "…" appended by the printer */
    int uses_allowed;      /* -1: unlimited */
    int pending, completed;
    long long expiry_ts;   /* 0: never */
    long long created_ts;
} client_regtoken_info;

/* Every token, oldest first. *out is malloc'd (free it). */
int client_regtoken_list(db_conn *c, client_regtoken_info **out, size_t *n, hs_err *err);

/* Delete a token: 0, or -1 with 404 M_NOT_FOUND when unknown. */
int client_regtoken_delete(db_conn *c, const char *token, hs_err *err);

#endif
