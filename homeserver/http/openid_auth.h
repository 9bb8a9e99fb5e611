/* openid_auth.h — checking the OpenID tokens clients get from
 * POST /_matrix/client/v3/user/{userId}/openid/request_token (issued by
 * homeserver/client/account.c, stored as SHA-256 in openid_tokens, valid one
 * hour). Federation's GET /_matrix/federation/v1/openid/userinfo answers
 * {"sub": <user>} with what this returns. */
#ifndef HS_OPENID_AUTH_H
#define HS_OPENID_AUTH_H

#include "homeserver/core/err.h"
#include "homeserver/db/db.h"

/* The user an OpenID token was issued to (malloc'd), or NULL with
 * 401 M_UNKNOWN_TOKEN when it is unknown or expired (or its user was
 * deactivated), 500 on database errors. */
char *hs_openid_token_user(db_conn *c, const char *token, hs_err *err);

#endif
