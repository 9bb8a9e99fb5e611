/* devices.c — GET /devices, GET/PUT/DELETE /devices/{deviceId},
 * POST /delete_devices.
 *
 * A device shows the time it was last used; its IP address and user agent
 * only when the admin turned on track_client_ips (see http/auth_seen.c). */
#include "devices.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "e2ee.h"
#include "homeserver/core/clock.h"
#include "homeserver/http/auth_cache.h"
#include "homeserver/core/log.h"
#include "text.h"
#include "uia.h"

void client_device_random_id(char out[11]) {
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for (int i = 0; i < 10; i++) out[i] = alpha[randombytes_uniform(26)];
    out[10] = 0;
}

int client_device_upsert(db_conn *c, const char *user_id, const char *device_id,
                         const char *display_name, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id, device_id) DO NOTHING");
    static db_stmt revoke = DB_STMT("DELETE FROM access_tokens WHERE user_id = $1 AND device_id = $2");
    static db_stmt revoke_refresh =
        DB_STMT("DELETE FROM refresh_tokens WHERE user_id = $1 AND device_id = $2");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *p[] = {user_id, device_id};
    if (db_exec(c, &revoke_refresh, 2, p, err) < 0 || db_exec(c, &revoke, 2, p, err) < 0) return -1;
    hs_auth_cache_forget_all();
    long n = db_exec(c, &ins, 4, (const char *[]){user_id, device_id, display_name, now}, err);
    return n < 0 ? -1 : n > 0;
}

static int collect(PGresult *r, json_t *deleted) {
    if (!r) return -1;
    for (int i = 0; deleted && i < PQntuples(r); i++)
        json_array_append_new(deleted, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return 0;
}

int client_devices_delete(db_conn *c, const char *user_id, const char *const *ids, size_t n,
                          const char *keep_device_id, json_t *deleted, hs_err *err) {
    static db_stmt del = DB_STMT(
        "DELETE FROM devices WHERE user_id = $1 AND device_id = $2 RETURNING device_id");
    static db_stmt del_all = DB_STMT(
        "DELETE FROM devices WHERE user_id = $1 AND device_id IS DISTINCT FROM $2"
        " RETURNING device_id");
    /* Tokens, keys, inboxes and pushers follow by ON DELETE CASCADE. */
    hs_auth_cache_forget_all();
    if (!ids) return collect(db_run(c, &del_all, 2, (const char *[]){user_id, keep_device_id}, err), deleted);
    for (size_t i = 0; i < n; i++)
        if (collect(db_run(c, &del, 2, (const char *[]){user_id, ids[i]}, err), deleted) < 0) return -1;
    return 0;
}

void client_devices_changed(hs_server *srv, const char *user_id, const json_t *device_ids) {
    size_t n = json_array_size(device_ids);
    if (!n) return;
    const char **ids = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = json_string_value(json_array_get(device_ids, i));
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c || client_e2ee_devices_changed(c, user_id, ids, n, &err) < 0)
        hs_warn("device list change of %s: %s", user_id, err.msg);
    db_release(srv->db, c);
    free(ids);
}

/* ---- the API ---- */

static json_t *device_json(PGresult *r, int i) {
    json_t *d = json_pack("{s:s}", "device_id", PQgetvalue(r, i, 0));
    if (!PQgetisnull(r, i, 1)) json_object_set_new(d, "display_name", json_string(PQgetvalue(r, i, 1)));
    if (!PQgetisnull(r, i, 2))
        json_object_set_new(d, "last_seen_ts", json_integer(atoll(PQgetvalue(r, i, 2))));
    if (!PQgetisnull(r, i, 3)) json_object_set_new(d, "last_seen_ip", json_string(PQgetvalue(r, i, 3)));
    if (!PQgetisnull(r, i, 4))
        json_object_set_new(d, "last_seen_user_agent", json_string(PQgetvalue(r, i, 4)));
    return d;
}

#define DEVICE_COLUMNS "device_id, display_name, last_seen_ts, last_seen_ip, last_seen_user_agent"

static int get_devices(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT " DEVICE_COLUMNS " FROM devices WHERE user_id = $1"
                               " ORDER BY created_ts, device_id");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 1, (const char *[]){r->user_id}, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) json_array_append_new(list, device_json(res, i));
    PQclear(res);
    *out = json_pack("{s:o}", "devices", list);
    return 200;
}

static int get_device(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT " DEVICE_COLUMNS " FROM devices"
                               " WHERE user_id = $1 AND device_id = $2");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 2, (const char *[]){r->user_id, r->params[0]}, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    int rc = 200;
    if (PQntuples(res) == 0) rc = hs_err_set(err, 404, "M_NOT_FOUND", "No such device");
    else *out = device_json(res, 0);
    PQclear(res);
    return rc;
}

static int put_device(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt exists = DB_STMT("SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2");
    static db_stmt up = DB_STMT(
        "UPDATE devices SET display_name = $3 WHERE user_id = $1 AND device_id = $2");
    const json_t *name = json_object_get(r->json, "display_name");
    if (name && !json_is_string(name))
        return hs_err_set(err, 400, "M_BAD_JSON", "'display_name' must be a string");
    const char *s = json_string_value(name);
    if (s && client_utf8_chars(s) > CLIENT_DEVICE_NAME_MAX)
        return hs_err_set(err, 400, "M_TOO_LARGE", "Device display name is too long (max %d)",
                          CLIENT_DEVICE_NAME_MAX);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const char *p[] = {r->user_id, r->params[0], s};
    /* Creating devices here is for application services only (v1.17). */
    long n = s ? db_exec(c, &up, 3, p, err) : db_exec(c, &exists, 2, p, err);
    /* A new name is a device-list change: other users' clients (and other
     * servers, m.device_list_update) show devices by name, as in Synapse. */
    if (n > 0 && s &&
        client_e2ee_devices_changed(c, r->user_id, (const char *const[]){r->params[0]}, 1, err) < 0)
        n = -1;
    db_release(r->srv->db, c);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 404, "M_NOT_FOUND", "No such device");
    *out = json_object();
    return 200;
}

static int delete_and_reply(hs_req *r, const char *const *ids, size_t n, json_t **out,
                            hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *gone = json_array();
    int rc = -1;
    if (db_script(c, "BEGIN", err) == 0 &&
        client_devices_delete(c, r->user_id, ids, n, NULL, gone, err) == 0 &&
        db_script(c, "COMMIT", err) == 0)
        rc = 200;
    else
        db_script(c, "ROLLBACK", NULL);
    db_release(r->srv->db, c);
    if (rc == 200) client_devices_changed(r->srv, r->user_id, gone), *out = json_object();
    json_decref(gone);
    return rc;
}

static int delete_device(hs_req *r, json_t **out, hs_err *err) {
    int rc = client_uia_reauth(r, "remove a device from your account", out, err);
    if (rc != 0) return rc;
    const char *id = r->params[0];
    return delete_and_reply(r, &id, 1, out, err);
}

static int post_delete_devices(hs_req *r, json_t **out, hs_err *err) {
    const json_t *devs = json_object_get(r->json, "devices");
    if (!json_is_array(devs))
        return hs_err_set(err, 400, "M_BAD_JSON", "'devices' must be a list of device IDs");
    size_t n = json_array_size(devs);
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_array_get(devs, i)))
            return hs_err_set(err, 400, "M_BAD_JSON", "'devices' must be a list of device IDs");
    int rc = client_uia_reauth(r, "remove devices from your account", out, err);
    if (rc != 0) return rc;
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = json_string_value(json_array_get(devs, i));
    rc = delete_and_reply(r, ids, n, out, err);
    free(ids);
    return rc;
}

void client_devices_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/devices", get_devices, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/devices/{deviceId}", get_device, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "PUT", "/_matrix/client/v3/devices/{deviceId}", put_device, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "DELETE", "/_matrix/client/v3/devices/{deviceId}", delete_device, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/delete_devices", post_delete_devices, HS_AUTH | HS_R0);
}
