/* account.c — the account itself: whoami, password change, deactivation,
 * the 3PID endpoints (this server keeps no email addresses or phone numbers,
 * so they answer as Synapse does with 3PID changes disabled), the third-party
 * protocols list and OpenID tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "devices.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "profile.h"
#include "register.h"
#include "room_send.h"
#include "tokens.h"
#include "uia.h"

#define OPENID_LIFETIME_MS 3600000LL

static int get_whoami(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    *out = json_pack("{s:s, s:s, s:b}", "user_id", r->user_id, "device_id", r->device_id,
                     "is_guest", r->is_guest);
    return 200;
}

/* UIA for the account endpoints: with an access token, its user confirms
 * their password; without one (the spec allows it), the password stage
 * says who the user is. The user goes to *user_id (malloc'd). */
static int account_uia(hs_req *r, char **user_id, json_t **out, hs_err *err) {
    static const char *const password[] = {"m.login.password", NULL};
    static const client_uia_flow flows[] = {password, NULL};
    client_uia_spec spec = {.flows = flows, .user_id = r->user_id};
    client_uia_result res = {0};
    int rc = client_uia_check(r, &spec, &res, out, err);
    if (rc == 0) *user_id = res.user_id, res.user_id = NULL;
    client_uia_result_free(&res);
    return rc;
}

/* ---- POST /account/password ---- */

typedef struct password_job {
    const char *user_id, *hash, *keep_device;
    bool logout;
    json_t *gone;  /* devices logged out */
} password_job;

static int password_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE users SET password_hash = $2 WHERE user_id = $1 AND NOT deactivated");
    password_job *j = arg;
    json_array_clear(j->gone);
    long n = db_exec(c, &up, 2, (const char *[]){j->user_id, j->hash}, err);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 403, "M_FORBIDDEN", "This account has been deactivated");
    /* The spec: the token of this request survives, every other session ends. */
    return j->logout ? client_devices_delete(c, j->user_id, NULL, 0, j->keep_device, j->gone, err)
                     : 0;
}

static int post_password(hs_req *r, json_t **out, hs_err *err) {
    const json_t *np = json_object_get(r->json, "new_password");
    const json_t *lo = json_object_get(r->json, "logout_devices");
    if (!np) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing params: new_password");
    if (!json_is_string(np) || !*json_string_value(np) || strlen(json_string_value(np)) > 512)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid new_password");
    if (lo && !json_is_boolean(lo))
        return hs_err_set(err, 400, "M_BAD_JSON", "'logout_devices' must be true or false");
    char *user_id = NULL;
    int rc = account_uia(r, &user_id, out, err);
    if (rc != 0) return rc;
    char *hash = client_hash_password(json_string_value(np), err);
    password_job j = {.user_id = user_id, .hash = hash, .keep_device = r->device_id,
                      .logout = !lo || json_is_true(lo), .gone = json_array()};
    rc = hash ? db_txn(r->srv->db, password_txn, &j, err) : -1;
    if (rc == 0) client_devices_changed(r->srv, user_id, j.gone);
    json_decref(j.gone);
    free(hash), free(user_id);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

/* ---- POST /account/deactivate ---- */

typedef struct deactivate_job {
    const char *user_id;
    bool erase;
    json_t *gone;
} deactivate_job;

static int deactivate_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE users SET deactivated = true, password_hash = NULL, erased = erased OR $2"
        " WHERE user_id = $1");
    static db_stmt login = DB_STMT("DELETE FROM login_tokens WHERE user_id = $1");
    static db_stmt openid = DB_STMT("DELETE FROM openid_tokens WHERE user_id = $1");
    /* What Synapse purges too: settings and secrets nobody can use any more
     * (pushers and device keys go with the devices). */
    static db_stmt purge[] = {
        DB_STMT("DELETE FROM account_data WHERE user_id = $1"),
        DB_STMT("DELETE FROM user_filters WHERE user_id = $1"),
        DB_STMT("DELETE FROM push_rules WHERE user_id = $1"),
        DB_STMT("DELETE FROM push_rule_default_changes WHERE user_id = $1"),
        DB_STMT("DELETE FROM e2e_room_keys_versions WHERE user_id = $1"),
    };
    deactivate_job *j = arg;
    const char *u[] = {j->user_id};
    json_array_clear(j->gone);
    if (db_exec(c, &up, 2, (const char *[]){j->user_id, j->erase ? "t" : "f"}, err) < 0 ||
        db_exec(c, &login, 1, u, err) < 0 || db_exec(c, &openid, 1, u, err) < 0 ||
        client_devices_delete(c, j->user_id, NULL, 0, NULL, j->gone, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof purge / sizeof *purge; i++)
        if (db_exec(c, &purge[i], 1, u, err) < 0) return -1;
    return j->erase ? client_profile_erase(c, j->user_id, err) : 0;
}

/* Leave every room the user is in, reject their invites, withdraw their
 * knocks. Best effort after the deactivation committed: a room that can't
 * be left now (say, an invite from a server we can't reach) is logged. */
static void part_rooms(hs_server *srv, const char *user_id) {
    static db_stmt q = DB_STMT(
        "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1"
        " AND membership IN ('join', 'invite', 'knock') ORDER BY room_id");
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    PGresult *r = c ? db_run(c, &q, 1, (const char *[]){user_id}, &err) : NULL;
    db_release(srv->db, c);
    json_t *leave = json_pack("{s:s}", "membership", "leave");
    for (int i = 0; r && i < PQntuples(r); i++) {
        hs_err e = {0};
        room_event *ev = client_room_send_state(srv, PQgetvalue(r, i, 0), user_id, "m.room.member",
                                                user_id, leave, &e);
        if (!ev) hs_warn("deactivated %s could not leave %s: %s", user_id, PQgetvalue(r, i, 0), e.msg);
        room_event_free(ev);
    }
    if (!r) hs_warn("deactivated %s: listing their rooms failed: %s", user_id, err.msg);
    PQclear(r);
    json_decref(leave);
}

static int post_deactivate(hs_req *r, json_t **out, hs_err *err) {
    const json_t *erase = json_object_get(r->json, "erase");
    const json_t *ids = json_object_get(r->json, "id_server");
    if (erase && !json_is_boolean(erase))
        return hs_err_set(err, 400, "M_BAD_JSON", "'erase' must be true or false");
    if (ids && !json_is_string(ids)) return hs_err_set(err, 400, "M_BAD_JSON", "'id_server' must be a string");
    char *user_id = NULL;
    int rc = account_uia(r, &user_id, out, err);
    if (rc != 0) return rc;
    deactivate_job j = {.user_id = user_id, .erase = json_is_true(erase), .gone = json_array()};
    rc = db_txn(r->srv->db, deactivate_txn, &j, err);
    if (rc == 0) {
        hs_info("deactivated %s%s", user_id, j.erase ? " (erased)" : "");
        client_devices_changed(r->srv, user_id, j.gone);
        part_rooms(r->srv, user_id);
    }
    json_decref(j.gone);
    free(user_id);
    if (rc < 0) return -1;
    /* No 3PID was ever bound here, so there was nothing to unbind. */
    *out = json_pack("{s:s}", "id_server_unbind_result", "success");
    return 200;
}

/* ---- 3PIDs, third-party protocols ---- */

static int get_3pids(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)err;
    *out = json_pack("{s:[]}", "threepids");
    return 200;
}

static int post_3pid_change(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)out;
    /* Synapse's answer with enable_3pid_changes off (m.3pid_changes false). */
    return hs_err_set(err, 400, "M_FORBIDDEN", "3PID changes are disabled on this server");
}

static int post_3pid_unbind(hs_req *r, json_t **out, hs_err *err) {
    const json_t *medium = json_object_get(r->json, "medium"), *addr = json_object_get(r->json, "address");
    const json_t *ids = json_object_get(r->json, "id_server");
    if (!json_is_string(medium) || !json_is_string(addr))
        return hs_err_set(err, 400, "M_BAD_JSON", "'medium' and 'address' must be strings");
    /* Nothing was bound through this server. An identity server named by the
     * client may hold a binding, but we don't talk to identity servers. */
    *out = json_pack("{s:s}", "id_server_unbind_result", json_is_string(ids) ? "no-support" : "success");
    return 200;
}

static int post_3pid_request_token(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)out;
    return hs_err_set(err, 400, "M_THREEPID_MEDIUM_NOT_SUPPORTED",
                      "This server does not use email addresses or phone numbers");
}

static int post_password_request_token(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)out;
    /* No account has an address here: the spec's "not found". */
    return hs_err_set(err, 400, "M_THREEPID_NOT_FOUND",
                      "No account on this server has this address (none has any)");
}

static int get_protocols(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)err;
    *out = json_object(); /* no bridges announce protocols yet */
    return 200;
}

/* ---- OpenID ---- */

static int post_openid_token(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO openid_tokens (token_hash, user_id, valid_until_ts) VALUES ($1::bytea, $2, $3)");
    static db_stmt purge = DB_STMT("DELETE FROM openid_tokens WHERE valid_until_ts < $1");
    if (strcmp(r->params[0], r->user_id))
        return hs_err_set(err, 403, "M_FORBIDDEN", "Cannot request tokens for other users.");
    char *tok = client_token_new("pvyo_");
    char hex[CLIENT_TOKEN_HEX_LEN], now[24], until[24];
    client_token_hash_hex(tok, hex);
    long long t = hs_now_ms();
    snprintf(now, sizeof now, "%lld", t);
    snprintf(until, sizeof until, "%lld", t + OPENID_LIFETIME_MS);
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c && db_exec(c, &purge, 1, (const char *[]){now}, err) >= 0 &&
                     db_exec(c, &ins, 3, (const char *[]){hex, r->user_id, until}, err) >= 0
                 ? 200
                 : -1;
    db_release(r->srv->db, c);
    if (rc == 200)
        *out = json_pack("{s:s, s:s, s:s, s:I}", "access_token", tok, "token_type", "Bearer",
                         "matrix_server_name", r->srv->cfg->server_name, "expires_in",
                         (json_int_t)(OPENID_LIFETIME_MS / 1000));
    free(tok);
    return rc;
}

void client_account_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/account/whoami", get_whoami, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "POST", "/_matrix/client/v3/account/password", post_password,
             HS_AUTH_OPTIONAL | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/deactivate", post_deactivate,
             HS_AUTH_OPTIONAL | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/account/3pid", get_3pids, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid", post_3pid_change, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid/add", post_3pid_change, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid/bind", post_3pid_change, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid/delete", post_3pid_change, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid/unbind", post_3pid_unbind, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid/email/requestToken",
             post_3pid_request_token, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/3pid/msisdn/requestToken",
             post_3pid_request_token, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/password/email/requestToken",
             post_password_request_token, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/account/password/msisdn/requestToken",
             post_password_request_token, HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/thirdparty/protocols", get_protocols, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "POST", "/_matrix/client/v3/user/{userId}/openid/request_token", post_openid_token,
             HS_AUTH | HS_R0);
}
