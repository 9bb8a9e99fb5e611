/* register.c — POST /register (users and guests), GET /register/available,
 * the registration token validity check, and the 3PID token requests we
 * refuse (no email or SMS here).
 *
 * Who may register: with registration_requires_token, anyone holding a token
 * (flow [m.login.registration_token]), even if enable_registration is off;
 * else with enable_registration (which the config only allows together with
 * enable_registration_without_verification), anyone (flow [m.login.dummy]);
 * else nobody: 403. Guests need allow_guest_access (register_guest.c, which
 * also holds the upgrade of a guest through this same POST /register). */
#include "register.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/http/ratelimit.h"
#include "devices.h"
#include "homeserver/core/clock.h"
#include "profile.h"
#include "registration_tokens.h"
#include "text.h"
#include "tokens.h"
#include "uia.h"
#include "users.h"

static bool registration_open(const cfg *c) {
    return c->enable_registration || c->registration_requires_token;
}

char *client_hash_password(const char *password, hs_err *err) {
    char *h = malloc(crypto_pwhash_STRBYTES);
    if (!h || crypto_pwhash_str(h, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        free(h);
        hs_err_set(err, 500, "M_UNKNOWN", "out of memory hashing the password");
        return NULL;
    }
    return h;
}

int client_check_new_localpart(db_conn *c, const char *lp, const char *server_name,
                               const char *allow_existing, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM users WHERE user_id = $1");
    if (hs_localpart_check(lp, server_name, err) < 0) return -1;
    if (lp[0] == '_')
        return hs_err_set(err, 400, "M_INVALID_USERNAME", "User ID may not begin with _");
    char id[512];
    snprintf(id, sizeof id, "@%s:%s", lp, server_name);
    if (allow_existing && !strcmp(allow_existing, id)) return 0;
    if (strspn(lp, "0123456789") == strlen(lp))
        return hs_err_set(err, 400, "M_INVALID_USERNAME",
                          "Numeric user IDs are reserved for generated accounts");
    PGresult *r = db_run(c, &q, 1, (const char *[]){id}, err);
    if (!r) return -1;
    int taken = PQntuples(r);
    PQclear(r);
    return taken ? hs_err_set(err, 400, "M_USER_IN_USE", "User ID already taken.") : 0;
}

int client_account_create(db_conn *c, const char *user_id, const char *password_hash, bool admin,
                          bool guest, const char *displayname, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO users (user_id, password_hash, admin, is_guest, created_ts)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *p[] = {user_id, password_hash, admin ? "t" : "f", guest ? "t" : "f", now};
    long n = db_exec(c, &ins, 5, p, err);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 400, "M_USER_IN_USE", "User ID already taken.");
    /* Synapse's default display name is the localpart. */
    char lp[256];
    snprintf(lp, sizeof lp, "%.*s", (int)(strchr(user_id, ':') - user_id - 1), user_id + 1);
    return client_profile_init(c, user_id, displayname ? displayname : lp, err);
}

void client_announce_device(hs_server *srv, const json_t *session) {
    json_t *ids = json_pack("[O]", json_object_get(session, "device_id"));
    client_devices_changed(srv, json_string_value(json_object_get(session, "user_id")), ids);
    json_decref(ids);
}

/* ---- POST /register ---- */

typedef struct reg_job {
    hs_server *srv;
    const char *sid;
    const json_t *params;   /* the request's (or the session's) parameters */
    const char *password_hash; /* hashed from this request's password, or NULL */
    const char *guest;      /* the guest this request upgrades (its guest_access_token), or NULL */
    bool refresh;
    json_t *out;
    bool created;           /* a new device: tell the device lists after COMMIT */
} reg_job;

static int finish_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT password_hash, registration_token, registered_user_id, upgrades_guest"
        " FROM uia_sessions WHERE session_id = $1 FOR UPDATE");
    static db_stmt mark = DB_STMT(
        "UPDATE uia_sessions SET registered_user_id = $2, password_hash = NULL WHERE session_id = $1");
    reg_job *j = arg;
    json_object_clear(j->out);
    j->created = false;
    PGresult *s = db_run(c, &q, 1, (const char *[]){j->sid}, err);
    if (!s) return -1;
    int rc = -1;
    char *user_id = NULL;
    const char *hash = j->password_hash;
    if (PQntuples(s) == 0) {
        hs_err_set(err, 400, "M_UNKNOWN", "Unknown session ID: %s", j->sid);
    } else if (!PQgetisnull(s, 0, 2)) {
        /* A retry after success: the account exists; log in again. */
        user_id = strdup(PQgetvalue(s, 0, 2));
        rc = 0;
    } else if (!hash && PQgetisnull(s, 0, 0)) {
        hs_err_set(err, 400, "M_MISSING_PARAM", "Missing params: password");
    } else {
        if (!hash) hash = PQgetvalue(s, 0, 0);
        const char *guest = j->guest ? j->guest : PQgetisnull(s, 0, 3) ? NULL : PQgetvalue(s, 0, 3);
        const char *name = guest ? NULL : json_string_value(json_object_get(j->params, "username"));
        char *lower = name ? strdup(name) : NULL;
        for (char *p = lower; p && *p; p++) *p = (char)tolower((unsigned char)*p);
        const char *sn = j->srv->cfg->server_name;
        if (lower && client_check_new_localpart(c, lower, sn, NULL, err) == 0)
            user_id = hs_user_id_from_name(lower, sn, err);
        else if (guest && client_guest_name_matches(guest, j->params, err) == 0)
            user_id = strdup(guest);
        else if (!lower && !guest)
            user_id = client_generate_user_id(c, sn, err);
        free(lower);
        if (user_id &&
            (guest ? client_guest_upgrade(c, user_id, hash, err)
                   : client_account_create(c, user_id, hash, false, false, NULL, err)) == 0 &&
            db_exec(c, &mark, 2, (const char *[]){j->sid, user_id}, err) >= 0 &&
            (PQgetisnull(s, 0, 1) || client_regtoken_complete(c, PQgetvalue(s, 0, 1), err) == 0))
            rc = 0;
    }
    if (rc == 0) {
        json_object_set_new(j->out, "user_id", json_string(user_id));
        json_object_set_new(j->out, "home_server", json_string(j->srv->cfg->server_name));
        if (!json_is_true(json_object_get(j->params, "inhibit_login")))
            rc = client_session_start(
                j->srv, c, user_id, json_string_value(json_object_get(j->params, "device_id")),
                json_string_value(json_object_get(j->params, "initial_device_display_name")),
                j->refresh, j->out, &j->created, err);
    }
    free(user_id);
    PQclear(s);
    return rc;
}

/* Keep the chosen password's hash in the session, so the client need not
 * send it again with the next stage (hashed once per session), and the guest
 * it upgrades (whose token the session must not keep). */
static void remember_password(hs_req *r, const json_t *challenge, const char *password,
                              const char *guest) {
    static db_stmt set = DB_STMT(
        "UPDATE uia_sessions SET password_hash = $2 WHERE session_id = $1 AND password_hash IS NULL");
    static db_stmt has = DB_STMT(
        "SELECT 1 FROM uia_sessions WHERE session_id = $1 AND password_hash IS NULL");
    static db_stmt set_guest = DB_STMT("UPDATE uia_sessions SET upgrades_guest = $2 WHERE session_id = $1");
    const char *sid = json_string_value(json_object_get(challenge, "session"));
    hs_err err = {0};
    db_conn *c = sid && (password || guest) ? db_acquire(r->srv->db, &err) : NULL;
    if (!c) return;
    if (guest) db_exec(c, &set_guest, 2, (const char *[]){sid, guest}, &err);
    PGresult *q = password ? db_run(c, &has, 1, (const char *[]){sid}, &err) : NULL;
    if (q && PQntuples(q) == 1) {
        char *h = client_hash_password(password, &err);
        if (h) db_exec(c, &set, 2, (const char *[]){sid, h}, &err);
        free(h);
    }
    PQclear(q);
    db_release(r->srv->db, c);
}

/* The checks the spec wants before any UIA: request shape, then the name. */
static int register_precheck(hs_req *r, const char *sid, const char *guest, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT registered_user_id FROM uia_sessions WHERE session_id = $1");
    const json_t *b = r->json;
    const json_t *name = json_object_get(b, "username"), *pw = json_object_get(b, "password");
    const json_t *rt = json_object_get(b, "refresh_token");
    if (name && (!json_is_string(name) || strlen(json_string_value(name)) > 512))
        return hs_err_set(err, 400, "M_INVALID_USERNAME", "Invalid username");
    if (pw && (!json_is_string(pw) || strlen(json_string_value(pw)) > 512))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid password");
    if (rt && !json_is_boolean(rt))
        return hs_err_set(err, 400, "M_BAD_JSON", "'refresh_token' must be true or false");
    static const char *const strings[] = {"device_id", "initial_device_display_name", NULL};
    for (const char *const *k = strings; *k; k++) {
        const json_t *v = json_object_get(b, *k);
        if (v && !json_is_string(v))
            return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be a string", *k);
    }
    const char *dname = json_string_value(json_object_get(b, "initial_device_display_name"));
    if (dname && client_utf8_chars(dname) > CLIENT_DEVICE_NAME_MAX)
        return hs_err_set(err, 400, "M_TOO_LARGE", "Device display name is too long (max %d)",
                          CLIENT_DEVICE_NAME_MAX);
    if (!name) return 0;
    char *lower = strdup(json_string_value(name));
    for (char *p = lower; *p; p++) *p = (char)tolower((unsigned char)*p);
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = -1;
    if (c) {
        PGresult *s = sid ? db_run(c, &q, 1, (const char *[]){sid}, err) : NULL;
        const char *mine = s && PQntuples(s) && !PQgetisnull(s, 0, 0) ? PQgetvalue(s, 0, 0) : NULL;
        if (!sid || s)
            rc = client_check_new_localpart(c, lower, r->srv->cfg->server_name, mine ? mine : guest,
                                            err);
        PQclear(s);
        db_release(r->srv->db, c);
    }
    free(lower);
    return rc;
}


static int limit_ip(hs_req *r, hs_err *err) {
    char ip[64];
    hs_req_client_ip(r, ip, sizeof ip);
    return hs_ratelimit("register", ip, &r->srv->cfg->rc_registration, err);
}

static int post_register(hs_req *r, json_t **out, hs_err *err) {
    const char *kind = hs_req_query(r, "kind");
    if (kind && !strcmp(kind, "guest")) return client_register_guest(r, out, err);
    if (kind && strcmp(kind, "user"))
        return hs_err_set(err, 400, "M_UNRECOGNIZED", "Do not understand membership kind: %s", kind);
    const char *type = json_string_value(json_object_get(r->json, "type"));
    if (type && !strcmp(type, "m.login.application_service"))
        return hs_err_set(err, 400, "M_UNKNOWN",
                          "Application service registration is not available yet");
    if (!registration_open(r->srv->cfg))
        return hs_err_set(err, 403, "M_FORBIDDEN", "Registration has been disabled");
    /* rc_registration: per client address, on requests that try to finish. */
    if (json_object_get(r->json, "auth") && limit_ip(r, err) < 0) return -1;
    const char *sid = client_uia_session_of(r->json);
    char *guest = NULL;
    if (client_guest_to_upgrade(r, &guest, err) < 0) return -1;
    int rc = register_precheck(r, sid, guest, err);
    if (rc < 0) return free(guest), -1;

    static const char *const token[] = {"m.login.registration_token", NULL};
    static const char *const dummy[] = {"m.login.dummy", NULL};
    static const client_uia_flow by_token[] = {token, NULL}, open[] = {dummy, NULL};
    client_uia_spec spec = {.flows = r->srv->cfg->registration_requires_token ? by_token : open};
    client_uia_result res = {0};
    json_t *challenge = NULL;
    const char *password = json_string_value(json_object_get(r->json, "password"));
    if (password && !*password) password = NULL;
    rc = client_uia_check(r, &spec, &res, &challenge, err);
    if (rc == 401) remember_password(r, challenge, password, guest);
    if (rc != 0) return free(guest), *out = challenge, rc;

    char *hash = password ? client_hash_password(password, err) : NULL;
    reg_job j = {.srv = r->srv, .sid = res.session_id, .params = res.params, .password_hash = hash,
                 .guest = guest,
                 .refresh = json_is_true(json_object_get(res.params, "refresh_token")),
                 .out = json_object()};
    rc = (!password || hash) ? db_txn(r->srv->db, finish_txn, &j, err) : -1;
    if (hash) sodium_memzero(hash, strlen(hash)), free(hash);
    client_uia_result_free(&res);
    free(guest);
    if (rc < 0) return json_decref(j.out), -1;
    if (j.created) client_announce_device(r->srv, j.out);
    *out = j.out;
    return 200;
}

/* ---- availability, token validity, 3PID requests ---- */

static int get_available(hs_req *r, json_t **out, hs_err *err) {
    if (!registration_open(r->srv->cfg))
        return hs_err_set(err, 403, "M_FORBIDDEN", "Registration has been disabled");
    const char *name = hs_req_query(r, "username");
    if (!name) return hs_err_set(err, 400, "M_MISSING_PARAM", "'username' is missing");
    char *lower = strdup(name);
    for (char *p = lower; *p; p++) *p = (char)tolower((unsigned char)*p);
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c ? client_check_new_localpart(c, lower, r->srv->cfg->server_name, NULL, err) : -1;
    db_release(r->srv->db, c);
    free(lower);
    if (rc < 0) return -1;
    *out = json_pack("{s:b}", "available", 1);
    return 200;
}

static int get_token_validity(hs_req *r, json_t **out, hs_err *err) {
    if (!r->srv->cfg->registration_requires_token)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Registration tokens are not enabled on this server");
    const char *token = hs_req_query(r, "token");
    if (!token) return hs_err_set(err, 400, "M_MISSING_PARAM", "'token' is missing");
    db_conn *c = db_acquire(r->srv->db, err);
    int ok = c ? client_regtoken_usable(c, token, false, err) : -1;
    db_release(r->srv->db, c);
    if (ok < 0) return -1;
    *out = json_pack("{s:b}", "valid", ok);
    return 200;
}

static int post_register_3pid_token(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)out;
    return hs_err_set(err, 403, "M_THREEPID_DENIED",
                      "This server does not use email addresses or phone numbers");
}

void client_register_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/register", post_register, HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/register/available", get_available, HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v1/register/m.login.registration_token/validity",
             get_token_validity, 0);
    hs_route(rt, "POST", "/_matrix/client/v3/register/email/requestToken", post_register_3pid_token,
             HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/register/msisdn/requestToken", post_register_3pid_token,
             HS_R0);
    client_shared_secret_routes(rt);
}
