/* registration_tokens.c — storing, checking and counting registration tokens. */
#include "registration_tokens.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "tokens.h"

/* Sessions live 48 hours (uia.c); a pending use lasts as long. */
#define PENDING_WINDOW_MS (48LL * 3600 * 1000)

bool client_regtoken_syntax_ok(const char *t) {
    size_t n = strlen(t);
    return n >= 1 && n <= CLIENT_REGTOKEN_MAX_LEN &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-") == n;
}

int client_regtoken_usable(db_conn *c, const char *token, bool lock, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT uses_allowed, completed, expiry_ts FROM registration_tokens"
        " WHERE token_hash = $1::bytea");
    static db_stmt q_lock = DB_STMT(
        "SELECT uses_allowed, completed, expiry_ts FROM registration_tokens"
        " WHERE token_hash = $1::bytea FOR UPDATE");
    static db_stmt pending = DB_STMT(
        "SELECT count(*) FROM uia_sessions WHERE registration_token = $1::bytea"
        " AND registered_user_id IS NULL AND created_ts > $2");
    if (!client_regtoken_syntax_ok(token)) return 0;
    char hex[CLIENT_TOKEN_HEX_LEN], since[24];
    client_token_hash_hex(token, hex);
    PGresult *r = db_run(c, lock ? &q_lock : &q, 1, (const char *[]){hex}, err);
    if (!r) return -1;
    int ok = PQntuples(r) == 1;
    if (ok && !PQgetisnull(r, 0, 2) && atoll(PQgetvalue(r, 0, 2)) <= hs_now_ms()) ok = 0;
    if (ok && !PQgetisnull(r, 0, 0)) {
        long long allowed = atoll(PQgetvalue(r, 0, 0)), done = atoll(PQgetvalue(r, 0, 1));
        snprintf(since, sizeof since, "%lld", hs_now_ms() - PENDING_WINDOW_MS);
        PGresult *p = db_run(c, &pending, 2, (const char *[]){hex, since}, err);
        if (!p) return PQclear(r), -1;
        ok = done + atoll(PQgetvalue(p, 0, 0)) < allowed;
        PQclear(p);
    }
    PQclear(r);
    return ok;
}

int client_regtoken_complete(db_conn *c, const char *hash_hex, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE registration_tokens SET completed = completed + 1 WHERE token_hash = $1::bytea");
    /* A token deleted meanwhile counts nothing: the registration stands. */
    return db_exec(c, &up, 1, (const char *[]){hash_hex}, err) < 0 ? -1 : 0;
}

static char *random_token(void) {
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char *t = malloc(17);
    if (!t) return NULL;
    for (int i = 0; i < 16; i++) t[i] = alpha[randombytes_uniform(sizeof alpha - 1)];
    t[16] = 0;
    return t;
}

char *client_regtoken_add(db_conn *c, const char *token, int uses, long long expiry_ts,
                          hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO registration_tokens (token_hash, hint, uses_allowed, expiry_ts, created_ts)"
        " VALUES ($1::bytea, $2, $3, $4, $5) ON CONFLICT DO NOTHING");
    if (token && !client_regtoken_syntax_ok(token)) {
        hs_err_set(err, 400, "M_INVALID_PARAM",
                   "a token is 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '~' and '-'");
        return NULL;
    }
    char *t = token ? strdup(token) : random_token();
    if (!t) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), NULL;
    /* The hint gives away at most a quarter of the token (and 3 characters). */
    size_t len = strlen(t), h = len / 4 < 3 ? len / 4 : 3;
    char hex[CLIENT_TOKEN_HEX_LEN], hint[4], u[16], exp[24], now[24];
    client_token_hash_hex(t, hex);
    snprintf(hint, sizeof hint, "%.*s", (int)h, t);
    snprintf(u, sizeof u, "%d", uses);
    snprintf(exp, sizeof exp, "%lld", expiry_ts);
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *p[] = {hex, hint, uses >= 0 ? u : NULL, expiry_ts ? exp : NULL, now};
    long n = db_exec(c, &ins, 5, p, err);
    if (n <= 0) {
        if (n == 0) hs_err_set(err, 400, "M_INVALID_PARAM", "this token exists already");
        free(t);
        return NULL;
    }
    return t;
}

int client_regtoken_list(db_conn *c, client_regtoken_info **out, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT t.hint, t.uses_allowed, t.completed, t.expiry_ts, t.created_ts,"
        " (SELECT count(*) FROM uia_sessions s WHERE s.registration_token = t.token_hash"
        "  AND s.registered_user_id IS NULL AND s.created_ts > $1)"
        " FROM registration_tokens t ORDER BY t.created_ts, t.hint");
    char since[24];
    snprintf(since, sizeof since, "%lld", hs_now_ms() - PENDING_WINDOW_MS);
    PGresult *r = db_run(c, &q, 1, (const char *[]){since}, err);
    if (!r) return -1;
    *n = (size_t)PQntuples(r);
    *out = calloc(*n ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++) {
        client_regtoken_info *t = &(*out)[i];
        snprintf(t->hint, sizeof t->hint, "%s", PQgetvalue(r, (int)i, 0));
        t->uses_allowed = PQgetisnull(r, (int)i, 1) ? -1 : atoi(PQgetvalue(r, (int)i, 1));
        t->completed = atoi(PQgetvalue(r, (int)i, 2));
        t->expiry_ts = PQgetisnull(r, (int)i, 3) ? 0 : atoll(PQgetvalue(r, (int)i, 3));
        t->created_ts = atoll(PQgetvalue(r, (int)i, 4));
        t->pending = atoi(PQgetvalue(r, (int)i, 5));
    }
    PQclear(r);
    return 0;
}

int client_regtoken_delete(db_conn *c, const char *token, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM registration_tokens WHERE token_hash = $1::bytea");
    char hex[CLIENT_TOKEN_HEX_LEN];
    client_token_hash_hex(token, hex);
    long n = db_exec(c, &del, 1, (const char *[]){hex}, err);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 404, "M_NOT_FOUND", "no such registration token");
    return 0;
}
