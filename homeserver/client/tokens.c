/* tokens.c — access, refresh and login tokens: made here, stored hashed. */
#include "tokens.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "devices.h"
#include "homeserver/core/clock.h"
#include "homeserver/http/auth_cache.h"

char *client_token_new(const char *prefix) {
    unsigned char raw[32];
    randombytes_buf(raw, sizeof raw);
    char *b64 = hs_b64_encode(raw, sizeof raw, true);
    sodium_memzero(raw, sizeof raw);
    if (!b64) return NULL;
    size_t n = strlen(prefix) + strlen(b64) + 1;
    char *t = malloc(n);
    if (t) snprintf(t, n, "%s%s", prefix, b64);
    free(b64);
    return t;
}

void client_token_hash_hex(const char *token, char out[CLIENT_TOKEN_HEX_LEN]) {
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    out[0] = '\\', out[1] = 'x';
    sodium_bin2hex(out + 2, CLIENT_TOKEN_HEX_LEN - 2, h, sizeof h);
}

static void fmt_ll(char buf[24], long long v) { snprintf(buf, 24, "%lld", v); }

/* A new refresh token row; its id into *id. */
static char *new_refresh_token(db_conn *c, const char *user_id, const char *device_id,
                               long long valid_until, long long prev_id, long long *id,
                               hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, valid_until_ts,"
        " prev_id) VALUES ($1::bytea, $2, $3, $4, $5, $6) RETURNING id");
    char *tok = client_token_new("pvyr_");
    char hex[CLIENT_TOKEN_HEX_LEN], now[24], until[24], prev[24];
    client_token_hash_hex(tok, hex);
    fmt_ll(now, hs_now_ms()), fmt_ll(until, valid_until), fmt_ll(prev, prev_id);
    const char *p[] = {hex, user_id, device_id, now, valid_until ? until : NULL,
                       prev_id ? prev : NULL};
    PGresult *r = db_run(c, &ins, 6, p, err);
    if (!r) return free(tok), NULL;
    *id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return tok;
}

static char *new_access_token(db_conn *c, const char *user_id, const char *device_id,
                              long long valid_until, long long refresh_id, long long revokes,
                              hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, valid_until_ts,"
        " refresh_token_id, revokes_refresh_id) VALUES ($1::bytea, $2, $3, $4, $5, $6, $7)");
    char *tok = client_token_new("pvy_");
    char hex[CLIENT_TOKEN_HEX_LEN], now[24], until[24], rid[24], rev[24];
    client_token_hash_hex(tok, hex);
    fmt_ll(now, hs_now_ms()), fmt_ll(until, valid_until), fmt_ll(rid, refresh_id);
    fmt_ll(rev, revokes);
    const char *p[] = {hex, user_id, device_id, now, valid_until ? until : NULL,
                       refresh_id ? rid : NULL, revokes ? rev : NULL};
    if (db_exec(c, &ins, 7, p, err) < 0) return free(tok), NULL;
    return tok;
}

int client_tokens_issue(db_conn *c, const cfg *cfg, const char *user_id, const char *device_id,
                        bool want_refresh, long long revokes_refresh_id, json_t *out,
                        hs_err *err) {
    long long now = hs_now_ms();
    bool refresh = want_refresh && cfg->refreshable_access_token_lifetime > 0;
    long long life = refresh ? cfg->refreshable_access_token_lifetime
                             : cfg->nonrefreshable_access_token_lifetime;
    long long refresh_id = 0;
    char *rt = NULL;
    if (refresh) {
        long long rlife = cfg->refresh_token_lifetime;
        rt = new_refresh_token(c, user_id, device_id, rlife ? now + rlife : 0, revokes_refresh_id,
                               &refresh_id, err);
        if (!rt) return -1;
    }
    char *at = new_access_token(c, user_id, device_id, life ? now + life : 0, refresh_id,
                                revokes_refresh_id, err);
    if (!at) return free(rt), -1;
    json_object_set_new(out, "access_token", json_string(at));
    if (rt) json_object_set_new(out, "refresh_token", json_string(rt));
    if (life) json_object_set_new(out, "expires_in_ms", json_integer(life));
    free(at);
    free(rt);
    return 0;
}

int client_tokens_refresh(db_conn *c, const cfg *cfg, const char *refresh_token, json_t *out,
                          hs_err *err) {
    /* FOR UPDATE: two refreshes racing with one token get one answer each
     * in turn, and the later one supersedes the earlier. */
    static db_stmt q = DB_STMT(
        "SELECT r.id, r.user_id, r.device_id, r.valid_until_ts, r.prev_id, u.locked_ts IS NOT NULL"
        " FROM refresh_tokens r"
        " JOIN users u USING (user_id) WHERE r.token_hash = $1::bytea AND NOT u.deactivated"
        " FOR UPDATE OF r");
    static db_stmt del_prev = DB_STMT("DELETE FROM refresh_tokens WHERE id = $1");
    static db_stmt del_next = DB_STMT("DELETE FROM refresh_tokens WHERE prev_id = $1");
    char hex[CLIENT_TOKEN_HEX_LEN];
    client_token_hash_hex(refresh_token, hex);
    PGresult *r = db_run(c, &q, 1, (const char *[]){hex}, err);
    if (!r) return -1;
    int rc = -1;
    if (PQntuples(r) == 0) {
        hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "Unknown or already used refresh token");
    } else if (!PQgetisnull(r, 0, 3) && atoll(PQgetvalue(r, 0, 3)) < hs_now_ms()) {
        hs_err_set(err, 401, "M_UNKNOWN_TOKEN", "The refresh token has expired");
    } else if (PQgetvalue(r, 0, 5)[0] == 't') {
        /* Spec, soft logout: no new access token until the account is
         * unlocked; this refresh token stays valid for then. */
        hs_err_set(err, 401, "M_USER_LOCKED", "This account has been locked");
    } else {
        const char *id = PQgetvalue(r, 0, 0);
        /* Using this token proves its predecessor was received: retire it
         * (with its access token). An earlier answer to this same token was
         * evidently lost: retire that. */
        if ((PQgetisnull(r, 0, 4) ||
             db_exec(c, &del_prev, 1, (const char *[]){PQgetvalue(r, 0, 4)}, err) >= 0) &&
            db_exec(c, &del_next, 1, (const char *[]){id}, err) >= 0 &&
            (hs_auth_cache_forget_all(), 1))
            rc = client_tokens_issue(c, cfg, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), true,
                                     atoll(id), out, err);
    }
    PQclear(r);
    return rc;
}

int client_session_start(hs_server *srv, db_conn *c, const char *user_id, const char *device_id,
                         const char *device_name, bool refresh, json_t *out, bool *created,
                         hs_err *err) {
    char gen[11];
    if (!device_id) client_device_random_id(gen), device_id = gen;
    int fresh = client_device_upsert(c, user_id, device_id, device_name, err);
    if (fresh < 0 || client_tokens_issue(c, srv->cfg, user_id, device_id, refresh, 0, out, err) < 0)
        return -1;
    if (created) *created = fresh > 0;
    json_object_set_new(out, "user_id", json_string(user_id));
    json_object_set_new(out, "device_id", json_string(device_id));
    json_object_set_new(out, "home_server", json_string(srv->cfg->server_name));
    return 0;
}

char *client_login_token_new(db_conn *c, const char *user_id, long long lifetime_ms,
                             hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO login_tokens (token_hash, user_id, created_ts, valid_until_ts)"
        " VALUES ($1::bytea, $2, $3, $4)");
    static db_stmt purge = DB_STMT("DELETE FROM login_tokens WHERE valid_until_ts < $1");
    char *tok = client_token_new("pvyl_");
    char hex[CLIENT_TOKEN_HEX_LEN], now[24], until[24];
    client_token_hash_hex(tok, hex);
    long long t = hs_now_ms();
    fmt_ll(now, t), fmt_ll(until, t + lifetime_ms);
    if (db_exec(c, &purge, 1, (const char *[]){now}, err) < 0 ||
        db_exec(c, &ins, 4, (const char *[]){hex, user_id, now, until}, err) < 0)
        return free(tok), NULL;
    return tok;
}

char *client_login_token_use(db_conn *c, const char *token, hs_err *err) {
    static db_stmt take = DB_STMT(
        "DELETE FROM login_tokens WHERE token_hash = $1::bytea RETURNING user_id, valid_until_ts");
    char hex[CLIENT_TOKEN_HEX_LEN];
    client_token_hash_hex(token, hex);
    PGresult *r = db_run(c, &take, 1, (const char *[]){hex}, err);
    if (!r) return NULL;
    char *user = NULL;
    if (PQntuples(r) == 1 && atoll(PQgetvalue(r, 0, 1)) >= hs_now_ms())
        user = strdup(PQgetvalue(r, 0, 0));
    else
        hs_err_set(err, 403, "M_FORBIDDEN", "Invalid login token");
    PQclear(r);
    return user;
}
