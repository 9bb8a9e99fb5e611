/* login.c — GET/POST /login (m.login.password) and /logout.
 *
 * A login creates (or reuses) a device and issues a fresh access token for
 * it; only the token's hash is stored. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "users.h"

static int get_login(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)err;
    *out = json_pack("{s:[{s:s}]}", "flows", "type", "m.login.password");
    return 200;
}

/* The user named by the request: identifier {type: m.id.user, user} or the
 * deprecated top-level "user". */
static const char *login_user(const json_t *body, hs_err *err) {
    const json_t *id = json_object_get(body, "identifier");
    if (id) {
        const char *type = json_string_value(json_object_get(id, "type"));
        if (!json_is_object(id) || !type)
            return hs_err_set(err, 400, "M_BAD_JSON", "'identifier' must be an object with 'type'"),
                   NULL;
        if (strcmp(type, "m.id.user") != 0)
            return hs_err_set(err, 400, "M_UNKNOWN", "unsupported identifier type '%s'", type),
                   NULL;
        const char *u = json_string_value(json_object_get(id, "user"));
        if (!u) hs_err_set(err, 400, "M_BAD_JSON", "'identifier.user' must be a string");
        return u;
    }
    const char *u = json_string_value(json_object_get(body, "user"));
    if (!u) hs_err_set(err, 400, "M_BAD_JSON", "'identifier' is missing");
    return u;
}

/* Create the device if new, else keep it (its old tokens are revoked, as the
 * spec asks when a client logs in again with the same device ID). */
static int upsert_device(db_conn *c, const char *user_id, const char *device_id,
                         const char *display_name, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id, device_id) DO NOTHING");
    static db_stmt revoke = DB_STMT("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    if (db_exec(c, &revoke, 2, (const char *[]){user_id, device_id}, err) < 0) return -1;
    return db_exec(c, &ins, 4, (const char *[]){user_id, device_id, display_name, now}, err) < 0
               ? -1
               : 0;
}

static void random_device_id(char out[11]) {
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int i = 0; i < 10; i++) out[i] = alpha[randombytes_uniform(26)];
    out[10] = 0;
}

static int post_login(hs_req *r, json_t **out, hs_err *err) {
    const char *type = json_string_value(json_object_get(r->json, "type"));
    if (!type) return hs_err_set(err, 400, "M_BAD_JSON", "'type' is missing");
    if (strcmp(type, "m.login.password") != 0)
        return hs_err_set(err, 400, "M_UNKNOWN", "unknown login type '%s'", type);
    const char *name = login_user(r->json, err);
    const char *password = json_string_value(json_object_get(r->json, "password"));
    if (!name) return -1;
    if (!password) return hs_err_set(err, 400, "M_BAD_JSON", "'password' must be a string");
    const json_t *dev = json_object_get(r->json, "device_id");
    const json_t *dname = json_object_get(r->json, "initial_device_display_name");
    if ((dev && !json_is_string(dev)) || (dname && !json_is_string(dname)))
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_id' and display name must be strings");

    hs_err ignored = {0};
    char *user_id = hs_user_id_from_name(name, r->srv->cfg->server_name, &ignored);
    db_conn *c = user_id ? db_acquire(r->srv->db, err) : NULL;
    if (!user_id || (c && !hs_user_check_password(c, user_id, password, err))) {
        db_release(r->srv->db, c);
        free(user_id);
        /* The same answer for an unknown user and a wrong password. */
        return hs_err_set(err, 403, "M_FORBIDDEN", "Invalid username or password");
    }
    if (!c) return free(user_id), -1;
    char gen[11];
    const char *device_id = json_string_value(dev);
    if (!device_id) random_device_id(gen), device_id = gen;
    char *token = NULL;
    int rc = -1;
    if (db_script(c, "BEGIN", err) == 0 &&
        upsert_device(c, user_id, device_id, json_string_value(dname), err) == 0 &&
        (token = hs_auth_issue_token(c, user_id, device_id, 0, err)) &&
        db_script(c, "COMMIT", err) == 0) {
        *out = json_pack("{s:s, s:s, s:s, s:s}", "user_id", user_id, "access_token", token,
                         "device_id", device_id, "home_server", r->srv->cfg->server_name);
        rc = 200;
    } else {
        db_script(c, "ROLLBACK", NULL);
    }
    db_release(r->srv->db, c);
    free(token);
    free(user_id);
    return rc;
}

static int post_logout(hs_req *r, json_t **out, hs_err *err) {
    /* Logging out removes the device with its token, as Synapse does. */
    static db_stmt del = DB_STMT("DELETE FROM devices WHERE user_id = $1 AND device_id = $2");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    long n = db_exec(c, &del, 2, (const char *[]){r->user_id, r->device_id}, err);
    db_release(r->srv->db, c);
    if (n < 0) return -1;
    *out = json_object();
    return 200;
}

static int post_logout_all(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM devices WHERE user_id = $1");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    long n = db_exec(c, &del, 1, (const char *[]){r->user_id}, err);
    db_release(r->srv->db, c);
    if (n < 0) return -1;
    *out = json_object();
    return 200;
}

void client_login_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/login", get_login, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/login", post_login, HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/logout", post_logout, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/logout/all", post_logout_all, HS_AUTH | HS_R0);
}
