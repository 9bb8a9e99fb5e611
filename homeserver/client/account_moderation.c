/* account_moderation.c — GET/PUT /_matrix/client/v1/admin/suspend/{userId}
 * and /admin/lock/{userId} (spec v1.18), and the state they change.
 *
 * What the state does is enforced where requests are authenticated
 * (http/auth.c: a lock refuses everything but logout, HS_REFUSE_SUSPENDED
 * routes refuse a suspended account) and, for sending events, in
 * suspension.c. */
#include <stdio.h>
#include <string.h>

#include "account_moderation.h"
#include "client.h"
#include "homeserver/core/log.h"
#include "homeserver/http/auth_cache.h"

const char *client_mod_field(client_mod_kind k) {
    return k == CLIENT_MOD_SUSPEND ? "suspended" : "locked";
}

int client_mod_get(db_conn *c, const char *user_id, client_mod_kind k, bool *on, bool *admin,
                   hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT suspended_ts IS NOT NULL, locked_ts IS NOT NULL, admin FROM users"
        " WHERE user_id = $1 AND NOT deactivated");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    int rc = 0;
    if (!PQntuples(r)) {
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "User not found.");
    } else {
        *on = PQgetvalue(r, 0, k == CLIENT_MOD_SUSPEND ? 0 : 1)[0] == 't';
        if (admin) *admin = PQgetvalue(r, 0, 2)[0] == 't';
    }
    PQclear(r);
    return rc;
}

int client_mod_set(db_conn *c, const char *user_id, client_mod_kind k, bool on, hs_err *err) {
    static db_stmt suspend = DB_STMT(
        "UPDATE users SET suspended_ts = CASE WHEN $2 THEN coalesce(suspended_ts, $3) END"
        " WHERE user_id = $1 AND NOT deactivated");
    static db_stmt lock = DB_STMT(
        "UPDATE users SET locked_ts = CASE WHEN $2 THEN coalesce(locked_ts, $3) END"
        " WHERE user_id = $1 AND NOT deactivated");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    long n = db_exec(c, k == CLIENT_MOD_SUSPEND ? &suspend : &lock, 3,
                     (const char *[]){user_id, on ? "true" : "false", now}, err);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 404, "M_NOT_FOUND", "User not found.");
    /* Cached tokens carry the state: the next request reads it anew, in
     * this process and (told after the update committed) in every serving
     * one, such as the server beside the CLI. */
    hs_auth_cache_forget_all();
    return db_script(c, "NOTIFY " HS_AUTH_CACHE_CHANNEL, err) < 0 ? -1 : 0;
}

int client_mod_refuse_locked(db_conn *c, const char *user_id, hs_err *err) {
    bool locked = false;
    hs_err e = {0};
    if (client_mod_get(c, user_id, CLIENT_MOD_LOCK, &locked, NULL, &e) < 0 && e.status != 404)
        return *err = e, -1;
    return locked ? hs_err_set(err, 401, "M_USER_LOCKED", "This account has been locked") : 0;
}

/* The order the spec asks: who may ask before anything about the account
 * (no user enumeration), then the ID's server, then the account itself. */
static int check_target(hs_req *r, db_conn *c, client_mod_kind k, bool setting, bool *on,
                        hs_err *err) {
    const char *target = r->params[0];
    const char *colon = strchr(target, ':');
    if (target[0] != '@' || !colon || strcmp(colon + 1, r->srv->cfg->server_name) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "User does not belong to the local server.");
    bool admin;
    if (client_mod_get(c, target, k, on, &admin, err) < 0) return -1;
    bool self = !strcmp(target, r->user_id);
    if (setting && self)
        return hs_err_set(err, 403, "M_FORBIDDEN", "You cannot %s your own account.",
                          k == CLIENT_MOD_SUSPEND ? "suspend" : "lock");
    if (admin && !self)
        return hs_err_set(err, 403, "M_FORBIDDEN", "The target user is a server administrator.");
    return 0;
}

static int moderation(hs_req *r, client_mod_kind k, bool setting, json_t **out, hs_err *err) {
    if (!r->is_admin)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Requesting user is not a server administrator.");
    const char *field = client_mod_field(k);
    const json_t *want = setting ? json_object_get(r->json, field) : NULL;
    if (setting && !json_is_boolean(want))
        return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be a boolean", field);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    bool on = false;
    int rc = check_target(r, c, k, setting, &on, err);
    if (rc == 0 && setting && json_is_true(want) != on) {
        rc = client_mod_set(c, r->params[0], k, json_is_true(want), err);
        if (rc == 0) {
            on = json_is_true(want);
            hs_info("%s: %s %s %s", r->user_id, r->params[0], on ? "now" : "no longer", field);
        }
    }
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    *out = json_pack("{s:b}", field, on);
    return 200;
}

static int get_suspend(hs_req *r, json_t **out, hs_err *err) {
    return moderation(r, CLIENT_MOD_SUSPEND, false, out, err);
}
static int put_suspend(hs_req *r, json_t **out, hs_err *err) {
    return moderation(r, CLIENT_MOD_SUSPEND, true, out, err);
}
static int get_lock(hs_req *r, json_t **out, hs_err *err) {
    return moderation(r, CLIENT_MOD_LOCK, false, out, err);
}
static int put_lock(hs_req *r, json_t **out, hs_err *err) {
    return moderation(r, CLIENT_MOD_LOCK, true, out, err);
}

void client_account_moderation_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v1/admin/suspend/{userId}", get_suspend, HS_AUTH);
    hs_route(rt, "PUT", "/_matrix/client/v1/admin/suspend/{userId}", put_suspend, HS_AUTH);
    hs_route(rt, "GET", "/_matrix/client/v1/admin/lock/{userId}", get_lock, HS_AUTH);
    hs_route(rt, "PUT", "/_matrix/client/v1/admin/lock/{userId}", put_lock, HS_AUTH);
}
