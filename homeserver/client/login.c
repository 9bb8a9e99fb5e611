/* login.c — GET/POST /login (m.login.password, m.login.token), /logout,
 * /logout/all, /refresh and /login/get_token.
 *
 * A login creates (or reuses) a device and issues a fresh access token for
 * it — with a refresh token when the client asks and the server allows —
 * storing only their hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_moderation.h"
#include "client.h"
#include "homeserver/http/ratelimit.h"
#include "devices.h"
#include "homeserver/core/clock.h"
#include "text.h"
#include "tokens.h"
#include "uia.h"
#include "users.h"

static int get_login(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    json_t *flows = json_pack("[{s:s}]", "type", "m.login.password");
    /* Login tokens come only from /login/get_token; without it, no flow. */
    if (r->srv->cfg->login_via_existing_session)
        json_array_append_new(flows, json_pack("{s:s, s:b}", "type", "m.login.token",
                                                "get_login_token", 1));
    *out = json_pack("{s:o}", "flows", flows);
    return 200;
}

/* The optional string members of a login body; 0 or -1 with 400. */
static int login_options(const json_t *body, const char **device_id, const char **name,
                         bool *refresh, hs_err *err) {
    const json_t *dev = json_object_get(body, "device_id");
    const json_t *dname = json_object_get(body, "initial_device_display_name");
    const json_t *rt = json_object_get(body, "refresh_token");
    if ((dev && !json_is_string(dev)) || (dname && !json_is_string(dname)))
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_id' and display name must be strings");
    if (rt && !json_is_boolean(rt))
        return hs_err_set(err, 400, "M_BAD_JSON", "'refresh_token' must be true or false");
    *device_id = json_string_value(dev);
    *name = json_string_value(dname);
    *refresh = json_is_true(rt);
    if (*device_id && (!**device_id || strlen(*device_id) > 255))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'device_id' must be 1 to 255 bytes");
    if (*name && client_utf8_chars(*name) > CLIENT_DEVICE_NAME_MAX)
        return hs_err_set(err, 400, "M_TOO_LARGE", "Device display name is too long (max %d)",
                          CLIENT_DEVICE_NAME_MAX);
    return 0;
}

/* Who the body authenticates, by its login type. */
static char *login_user(hs_req *r, db_conn *c, const char *type, hs_err *err) {
    if (!strcmp(type, "m.login.password"))
        return client_check_password_login(c, r->json, r->srv->cfg->server_name, err);
    if (!strcmp(type, "m.login.token") && r->srv->cfg->login_via_existing_session) {
        const char *token = json_string_value(json_object_get(r->json, "token"));
        if (!token) return hs_err_set(err, 400, "M_MISSING_PARAM", "'token' is missing"), NULL;
        return client_login_token_use(c, token, err);
    }
    hs_err_set(err, 400, "M_UNKNOWN", "unknown login type '%s'", type);
    return NULL;
}

static int post_login(hs_req *r, json_t **out, hs_err *err) {
    const char *type = json_string_value(json_object_get(r->json, "type"));
    if (!type) return hs_err_set(err, 400, "M_BAD_JSON", "'type' is missing");
    const char *device_id = NULL, *name = NULL;
    bool refresh = false;
    if (login_options(r->json, &device_id, &name, &refresh, err) < 0) return -1;
    /* rc_login: per address always; failed attempts per address too (they
     * are counted below); per account once the account is known. */
    char ip[64];
    hs_req_client_ip(r, ip, sizeof ip);
    const cfg *conf = r->srv->cfg;
    if (hs_ratelimit("login-ip", ip, &conf->rc_login_address, err) < 0 ||
        hs_ratelimit_check("login-failed", ip, &conf->rc_login_failed_attempts, err) < 0)
        return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    bool created = false;
    json_t *res = json_object();
    char *user_id = NULL;
    /* One transaction: a login token is spent only if the login happens. */
    if (db_script(c, "BEGIN", err) == 0) {
        user_id = login_user(r, c, type, err);
        if (!user_id && err->status == 403) {
            hs_err spent = {0};
            hs_ratelimit("login-failed", ip, &conf->rc_login_failed_attempts, &spent);
        }
        /* After the credentials, so only their holder learns of the lock. */
        if (user_id && client_mod_refuse_locked(c, user_id, err) < 0) free(user_id), user_id = NULL;
        if (user_id && hs_ratelimit("login-account", user_id, &conf->rc_login_account, err) == 0 &&
            client_session_start(r->srv, c, user_id, device_id, name, refresh, res, &created, err) == 0 &&
            db_script(c, "COMMIT", err) == 0)
            rc = 200;
        else
            db_script(c, "ROLLBACK", NULL);
    }
    db_release(r->srv->db, c);
    if (rc == 200 && created) {
        json_t *ids = json_pack("[O]", json_object_get(res, "device_id"));
        client_devices_changed(r->srv, user_id, ids);
        json_decref(ids);
    }
    free(user_id);
    if (rc != 200) return json_decref(res), -1;
    json_object_set_new(res, "well_known",
                        json_pack("{s:{s:s}}", "m.homeserver", "base_url", r->srv->cfg->public_baseurl));
    *out = res;
    return 200;
}

static int delete_devices_of(hs_req *r, bool all, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const char *id = r->device_id;
    json_t *gone = json_array();
    /* Logging out removes the device with its tokens, as Synapse does. */
    int rc = client_devices_delete(c, r->user_id, all ? NULL : &id, 1, NULL, gone, err);
    db_release(r->srv->db, c);
    if (rc == 0) client_devices_changed(r->srv, r->user_id, gone);
    json_decref(gone);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

static int post_logout(hs_req *r, json_t **out, hs_err *err) {
    return delete_devices_of(r, false, out, err);
}

static int post_logout_all(hs_req *r, json_t **out, hs_err *err) {
    return delete_devices_of(r, true, out, err);
}

typedef struct refresh_job {
    const cfg *cfg;
    const char *token;
    json_t *out;
} refresh_job;

static int refresh_txn(db_conn *c, void *arg, hs_err *err) {
    refresh_job *j = arg;
    json_object_clear(j->out);
    return client_tokens_refresh(c, j->cfg, j->token, j->out, err);
}

static int post_refresh(hs_req *r, json_t **out, hs_err *err) {
    const char *token = json_string_value(json_object_get(r->json, "refresh_token"));
    if (!token) return hs_err_set(err, 400, "M_MISSING_PARAM", "'refresh_token' is missing");
    refresh_job j = {.cfg = r->srv->cfg, .token = token, .out = json_object()};
    if (db_txn(r->srv->db, refresh_txn, &j, err) < 0) return json_decref(j.out), -1;
    *out = j.out;
    return 200;
}

static int post_get_token(hs_req *r, json_t **out, hs_err *err) {
    if (!r->srv->cfg->login_via_existing_session || r->is_guest)
        return hs_err_set(err, 400, "M_FORBIDDEN",
                          "Signing in other devices with a login token is not enabled here");
    static const char *const password[] = {"m.login.password", NULL};
    static const client_uia_flow flows[] = {password, NULL};
    /* single_use: the spec wants the user asked again for every new device. */
    client_uia_spec spec = {.flows = flows, .user_id = r->user_id, .single_use = true};
    int rc = client_uia_check(r, &spec, NULL, out, err);
    if (rc != 0) return rc;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    long long life = r->srv->cfg->login_via_existing_token_timeout;
    char *tok = client_login_token_new(c, r->user_id, life, err);
    db_release(r->srv->db, c);
    if (!tok) return -1;
    *out = json_pack("{s:s, s:I}", "login_token", tok, "expires_in_ms", (json_int_t)life);
    free(tok);
    return 200;
}

void client_login_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/login", get_login, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/login", post_login, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/logout", post_logout, HS_AUTH | HS_R0 | HS_ALLOW_LOCKED);
    hs_route(rt, "POST", "/_matrix/client/v3/logout/all", post_logout_all, HS_AUTH | HS_R0 | HS_ALLOW_LOCKED);
    hs_route(rt, "POST", "/_matrix/client/v3/refresh", post_refresh, 0);
    hs_route(rt, "POST", "/_matrix/client/v1/login/get_token", post_get_token, HS_AUTH);
}
