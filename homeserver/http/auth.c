/* auth.c — access tokens: issuing them and authenticating requests.
 *
 * Tokens are 32 random bytes, shown to the client once; the database keeps
 * only SHA-256(token), so a leaked database holds no usable token. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth_cache.h"
#include "auth_seen.h"
#include "homeserver/core/base64.h"
#include "http.h"
#include "http_internal.h"

static const char *bearer(hs_req *r) {
    const char *h = hs_req_header(r, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7)) return h + 7;
    return hs_req_query(r, "access_token"); /* deprecated, still used by some clients */
}

bool hs_auth_has_token(hs_req *r) { return bearer(r) != NULL; }

static void token_hash(const char *token, unsigned char h[crypto_hash_sha256_BYTES],
                       char hex[2 + 64 + 1]) {
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    hex[0] = '\\', hex[1] = 'x';
    sodium_bin2hex(hex + 2, 65, h, crypto_hash_sha256_BYTES);
}

#define SEEN_GRANULARITY_MS 60000LL /* as auth_seen.c writes last_seen_ts */

/* A cached token whose device activity needs no write: no database at all. */
static bool from_cache(hs_req *r, const unsigned char h[32], hs_err *err, int *rc) {
    hs_auth_entry e;
    if (!hs_auth_cache_get(h, &e)) return false;
    long long now = hs_now_ms();
    if (e.last_seen_ts < 0 || now - e.last_seen_ts >= SEEN_GRANULARITY_MS) return false;
    if (e.valid_until_ts && e.valid_until_ts < now) {
        *rc = hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "Access token has expired");
        return true;
    }
    r->user_id = strdup(e.user_id);
    r->device_id = strdup(e.device_id);
    r->is_admin = e.admin;
    r->is_guest = e.guest;
    r->is_suspended = e.suspended;
    r->is_locked = e.locked;
    *rc = 0;
    return true;
}

static void to_cache(const unsigned char h[32], PGresult *res, long long last_seen,
                     unsigned long gen) {
    hs_auth_entry e = {.admin = PQgetvalue(res, 0, 2)[0] == 't',
                       .guest = PQgetvalue(res, 0, 3)[0] == 't',
                       .valid_until_ts = PQgetisnull(res, 0, 4) ? 0 : atoll(PQgetvalue(res, 0, 4)),
                       .suspended = PQgetvalue(res, 0, 7)[0] == 't',
                       .locked = PQgetvalue(res, 0, 8)[0] == 't'};
    if (strlen(PQgetvalue(res, 0, 0)) >= sizeof e.user_id ||
        strlen(PQgetvalue(res, 0, 1)) >= sizeof e.device_id)
        return;
    strcpy(e.user_id, PQgetvalue(res, 0, 0));
    strcpy(e.device_id, PQgetvalue(res, 0, 1));
    long long now = hs_now_ms();
    e.last_seen_ts = last_seen < 0 || now - last_seen >= SEEN_GRANULARITY_MS ? now : last_seen;
    hs_auth_cache_put(h, &e, gen);
}

int hs_auth_request(hs_req *r, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT t.user_id, t.device_id, u.admin, u.is_guest, t.valid_until_ts,"
        " t.revokes_refresh_id, d.last_seen_ts,"
        " u.suspended_ts IS NOT NULL, u.locked_ts IS NOT NULL"
        " FROM access_tokens t JOIN users u USING (user_id)"
        " LEFT JOIN devices d ON d.user_id = t.user_id AND d.device_id = t.device_id"
        " WHERE t.token_hash = $1::bytea AND NOT u.deactivated");
    const char *token = bearer(r);
    if (!token || !*token) return hs_err_set(err, 401, "M_MISSING_TOKEN", "Missing access token");
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 + 64 + 1];
    token_hash(token, h, hex);
    int rc = 0;
    if (from_cache(r, h, err, &rc)) return rc;
    unsigned long gen = hs_auth_cache_generation();
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 1, (const char *[]){hex}, err);
    if (!res) return db_release(r->srv->db, c), -1;
    if (PQntuples(res) == 0) {
        rc = hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "Unrecognised access token");
    } else if (!PQgetisnull(res, 0, 4) && atoll(PQgetvalue(res, 0, 4)) < hs_now_ms()) {
        rc = hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "Access token has expired");
    } else {
        r->user_id = strdup(PQgetvalue(res, 0, 0));
        r->device_id = strdup(PQgetvalue(res, 0, 1));
        r->is_admin = PQgetvalue(res, 0, 2)[0] == 't';
        r->is_guest = PQgetvalue(res, 0, 3)[0] == 't';
        r->is_suspended = PQgetvalue(res, 0, 7)[0] == 't';
        r->is_locked = PQgetvalue(res, 0, 8)[0] == 't';
        /* Device activity and refresh-token retirement (auth_seen.c). */
        const char *revokes = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
        long long seen = PQgetisnull(res, 0, 6) ? -1 : atoll(PQgetvalue(res, 0, 6));
        hs_auth_seen(r, c, hex, revokes, seen);
        /* A token whose first use retires a refresh token, or one without a
         * device row (seen = -1), always takes the database path. */
        if (!revokes && seen >= 0) to_cache(h, res, seen, gen);
    }
    db_release(r->srv->db, c);
    PQclear(res);
    return rc;
}

int hs_auth_route(hs_req *r, int flags, hs_err *err) {
    if (!(flags & HS_AUTH) && !((flags & HS_AUTH_OPTIONAL) && hs_auth_has_token(r))) return 0;
    if (hs_auth_request(r, err) < 0) return -1;
    /* The lock comes first: a locked account learns nothing else, and its
     * client keeps its session (soft_logout, http/server.c) until unlocked. */
    if (r->is_locked && !(flags & HS_ALLOW_LOCKED))
        return hs_err_set(err, 401, "M_USER_LOCKED", "This account has been locked");
    if (r->is_guest && !(flags & HS_GUEST))
        return hs_err_set(err, 403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed");
    if (r->is_suspended && (flags & HS_REFUSE_SUSPENDED))
        return hs_err_set(err, 403, "M_USER_SUSPENDED",
                          "You cannot perform this action while suspended.");
    return 0;
}

char *hs_auth_guest_of_token(db_conn *c, const char *token, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT t.user_id FROM access_tokens t JOIN users u USING (user_id)"
        " WHERE t.token_hash = $1::bytea AND u.is_guest AND NOT u.deactivated"
        " AND (t.valid_until_ts IS NULL OR t.valid_until_ts >= $2)");
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 + 64 + 1], now[24];
    token_hash(token, h, hex);
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    PGresult *res = db_run(c, &q, 2, (const char *[]){hex, now}, err);
    if (!res) return NULL;
    char *user_id = PQntuples(res) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return user_id;
}

char *hs_auth_issue_token(db_conn *c, const char *user_id, const char *device_id,
                          long long valid_until_ts, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, valid_until_ts)"
        " VALUES ($1::bytea, $2, $3, $4, $5)");
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char *b64 = hs_b64_encode(raw, sizeof raw, true);
    /* A recognisable prefix lets secret scanners spot leaked tokens. */
    size_t n = strlen(b64) + 8;
    char *token = malloc(n);
    snprintf(token, n, "pvy_%s", b64);
    free(b64);
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 + 64 + 1], now[24], until[24];
    token_hash(token, h, hex);
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    snprintf(until, sizeof until, "%lld", valid_until_ts);
    const char *p[] = {hex, user_id, device_id, now, valid_until_ts > 0 ? until : NULL};
    if (db_exec(c, &ins, 5, p, err) < 0) {
        free(token);
        return NULL;
    }
    return token;
}
