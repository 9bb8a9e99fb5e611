/* register_admin.c — Synapse's shared-secret registration,
 * GET/POST /_synapse/admin/v1/register, so register_new_matrix_user and the
 * tools built like it create accounts here too.
 *
 * GET hands out a nonce (single use, 60 seconds, kept in the database so any
 * process can check it); POST carries it with
 *   mac = hex(HMAC-SHA1(registration_shared_secret,
 *             nonce \0 username \0 password \0 "admin"|"notadmin"))
 * and gets an account (and, unless inhibit_login, a session). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "register.h"
#include "tokens.h"
#include "users.h"

#define NONCE_LIFETIME_MS 60000LL /* Synapse's NONCE_TIMEOUT */

static int get_nonce(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt purge = DB_STMT("DELETE FROM registration_nonces WHERE created_ts < $1");
    static db_stmt ins = DB_STMT("INSERT INTO registration_nonces (nonce, created_ts) VALUES ($1, $2)");
    /* Without a secret there is nothing to sign: don't store nonces for nobody. */
    if (!r->srv->cfg->registration_shared_secret)
        return hs_err_set(err, 400, "M_UNKNOWN", "Shared secret registration is not enabled");
    unsigned char raw[64];
    char nonce[129], now[24], old[24];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(nonce, sizeof nonce, raw, sizeof raw);
    long long t = hs_now_ms();
    snprintf(now, sizeof now, "%lld", t);
    snprintf(old, sizeof old, "%lld", t - NONCE_LIFETIME_MS);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = db_exec(c, &purge, 1, (const char *[]){old}, err) < 0 ||
                     db_exec(c, &ins, 2, (const char *[]){nonce, now}, err) < 0
                 ? -1
                 : 200;
    db_release(r->srv->db, c);
    if (rc == 200) *out = json_pack("{s:s}", "nonce", nonce);
    return rc;
}

/* Take the nonce: 1 if it was ours and fresh, 0 if not, -1 on error. Taken
 * even when the request fails later, as Synapse does. */
static int take_nonce(db_conn *c, const char *nonce, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM registration_nonces WHERE nonce = $1 RETURNING created_ts");
    PGresult *r = db_run(c, &del, 1, (const char *[]){nonce}, err);
    if (!r) return -1;
    int ok = PQntuples(r) == 1 && atoll(PQgetvalue(r, 0, 0)) >= hs_now_ms() - NONCE_LIFETIME_MS;
    PQclear(r);
    return ok;
}

static bool mac_ok(const char *secret, const char *nonce, const char *user, const char *password,
                   bool admin, const char *mac_hex) {
    size_t ln = strlen(nonce), lu = strlen(user), lp = strlen(password);
    const char *role = admin ? "admin" : "notadmin";
    size_t n = ln + 1 + lu + 1 + lp + 1 + strlen(role);
    unsigned char *msg = malloc(n), md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!msg) return false;
    unsigned char *p = msg;
    memcpy(p, nonce, ln), p += ln, *p++ = 0;
    memcpy(p, user, lu), p += lu, *p++ = 0;
    memcpy(p, password, lp), p += lp, *p++ = 0;
    memcpy(p, role, strlen(role));
    bool ok = HMAC(EVP_sha1(), secret, (int)strlen(secret), msg, n, md, &mdlen) != NULL;
    sodium_memzero(msg, n);
    free(msg);
    char want[2 * EVP_MAX_MD_SIZE + 1];
    sodium_bin2hex(want, sizeof want, md, mdlen);
    return ok && strlen(mac_hex) == strlen(want) && CRYPTO_memcmp(want, mac_hex, strlen(want)) == 0;
}

/* The body's shape, as Synapse checks it (400s before the MAC). */
static int check_body(const json_t *b, hs_err *err) {
    const char *u = json_string_value(json_object_get(b, "username"));
    const char *p = json_string_value(json_object_get(b, "password"));
    const json_t *ut = json_object_get(b, "user_type"), *dn = json_object_get(b, "displayname");
    const json_t *rt = json_object_get(b, "refresh_token");
    if (!json_object_get(b, "username"))
        return hs_err_set(err, 400, "M_BAD_JSON", "username must be specified");
    if (!u || strlen(u) > 512) return hs_err_set(err, 400, "M_INVALID_USERNAME", "Invalid username");
    if (!json_object_get(b, "password"))
        return hs_err_set(err, 400, "M_BAD_JSON", "password must be specified");
    if (!p || strlen(p) > 512 || !*p) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid password");
    /* Synapse's support and bot user types have no meaning here yet. */
    if (ut && !json_is_null(ut)) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user type");
    if (dn && !json_is_null(dn) && !json_is_string(dn))
        return hs_err_set(err, 400, "M_BAD_JSON", "displayname must be a string");
    if (!json_is_string(json_object_get(b, "mac")))
        return hs_err_set(err, 400, "M_BAD_JSON", "mac must be specified");
    if (rt && !json_is_boolean(rt))
        return hs_err_set(err, 400, "M_BAD_JSON", "refresh_token must be a boolean");
    return 0;
}

typedef struct admin_reg {
    hs_server *srv;
    const json_t *body;
    const char *user_id, *hash;
    json_t *out;
    bool created;
} admin_reg;

static int admin_reg_txn(db_conn *c, void *arg, hs_err *err) {
    admin_reg *j = arg;
    const json_t *b = j->body;
    json_object_clear(j->out);
    j->created = false;
    char lp[256];
    snprintf(lp, sizeof lp, "%.*s", (int)(strchr(j->user_id, ':') - j->user_id - 1), j->user_id + 1);
    bool admin = json_is_true(json_object_get(b, "admin"));
    if (client_check_new_localpart(c, lp, j->srv->cfg->server_name, NULL, err) < 0 ||
        client_account_create(c, j->user_id, j->hash, admin, false,
                              json_string_value(json_object_get(b, "displayname")), err) < 0)
        return -1;
    json_object_set_new(j->out, "user_id", json_string(j->user_id));
    json_object_set_new(j->out, "home_server", json_string(j->srv->cfg->server_name));
    if (json_is_true(json_object_get(b, "inhibit_login"))) return 0;
    return client_session_start(j->srv, c, j->user_id,
                                json_string_value(json_object_get(b, "device_id")),
                                json_string_value(json_object_get(b, "initial_device_display_name")),
                                json_is_true(json_object_get(b, "refresh_token")), j->out,
                                &j->created, err);
}

static int post_admin_register(hs_req *r, json_t **out, hs_err *err) {
    const cfg *cf = r->srv->cfg;
    if (!cf->registration_shared_secret)
        return hs_err_set(err, 400, "M_UNKNOWN", "Shared secret registration is not enabled");
    const char *nonce = json_string_value(json_object_get(r->json, "nonce"));
    if (!nonce) return hs_err_set(err, 400, "M_BAD_JSON", "nonce must be specified");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int fresh = take_nonce(c, nonce, err);
    db_release(r->srv->db, c);
    if (fresh < 0) return -1;
    if (!fresh) return hs_err_set(err, 400, "M_UNKNOWN", "unrecognised nonce");
    if (check_body(r->json, err) < 0) return -1;
    const char *user = json_string_value(json_object_get(r->json, "username"));
    const char *password = json_string_value(json_object_get(r->json, "password"));
    if (!mac_ok(cf->registration_shared_secret, nonce, user, password,
                json_is_true(json_object_get(r->json, "admin")),
                json_string_value(json_object_get(r->json, "mac"))))
        return hs_err_set(err, 403, "M_FORBIDDEN", "HMAC incorrect");
    char *lower = strdup(user);
    for (char *p = lower; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    char *user_id = hs_user_id_from_name(lower, cf->server_name, err);
    free(lower);
    char *hash = user_id ? client_hash_password(password, err) : NULL;
    admin_reg j = {.srv = r->srv, .body = r->json, .user_id = user_id, .hash = hash,
                   .out = json_object()};
    int rc = hash ? db_txn(r->srv->db, admin_reg_txn, &j, err) : -1;
    free(user_id), free(hash);
    if (rc < 0) return json_decref(j.out), -1;
    if (j.created) client_announce_device(r->srv, j.out);
    *out = j.out;
    return 200;
}

void client_shared_secret_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_synapse/admin/v1/register", get_nonce, 0);
    hs_route(rt, "POST", "/_synapse/admin/v1/register", post_admin_register, 0);
}
