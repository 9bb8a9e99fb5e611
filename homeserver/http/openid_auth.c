/* openid_auth.c — OpenID token lookup (see openid_auth.h). */
#include "openid_auth.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"

char *hs_openid_token_user(db_conn *c, const char *token, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT t.user_id, t.valid_until_ts FROM openid_tokens t JOIN users u USING (user_id)"
        " WHERE t.token_hash = $1::bytea AND NOT u.deactivated");
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 + 64 + 1] = "\\x";
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(hex + 2, sizeof hex - 2, h, sizeof h);
    PGresult *r = db_run(c, &q, 1, (const char *[]){hex}, err);
    if (!r) return NULL;
    char *user = NULL;
    if (PQntuples(r) == 1 && atoll(PQgetvalue(r, 0, 1)) >= hs_now_ms())
        user = strdup(PQgetvalue(r, 0, 0));
    else
        hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "Access Token unknown or expired");
    PQclear(r);
    return user;
}
