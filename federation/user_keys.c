/* user_keys.c — our users' keys for other servers:
 *
 *   GET  /_matrix/federation/v1/user/devices/{userId}   a user's devices and
 *        cross-signing keys, with the device-list stream_id that later
 *        m.device_list_update EDUs continue from
 *   POST /_matrix/federation/v1/user/keys/query         device and
 *        cross-signing keys of several users
 *   POST /_matrix/federation/v1/user/keys/claim         one-time keys
 *
 * All answer from the same tables and functions as the Client-Server API
 * (e2ee.h); another server sees the owner's own signatures only, and
 * device display names only with allow_device_name_lookup_over_federation
 * (Synapse's key; off by default). Users of other servers are refused with
 * 400, as Synapse does. */
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/e2ee.h"
#include "sender_internal.h"

static int not_ours(const char *user_id, hs_err *err) {
    return hs_err_set(err, 400, "M_INVALID_PARAM", "User %.300s is not hosted on this homeserver",
                      user_id);
}

/* The device-list position of the user's last change (0 if none). */
static long long user_stream_id(db_conn *c, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT coalesce(max(stream_id), 0) FROM e2e_device_list_changes WHERE user_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    long long id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return id;
}

static int get_user_devices(hs_req *r, json_t **out, hs_err *err) {
    const char *user_id = r->params[0];
    if (!fed_user_is_on(user_id, r->srv->cfg->server_name)) return not_ours(user_id, err);
    json_t *keys = json_object(), *users = json_pack("{s:[]}", user_id);
    db_conn *c = db_acquire(r->srv->db, err);
    long long sid = c ? user_stream_id(c, user_id, err) : -1;
    /* Device names stay home unless the admin lets them out (Synapse's
     * allow_device_name_lookup_over_federation, off by default). */
    bool names = r->srv->cfg->allow_device_name_lookup_over_federation;
    int rc = sid >= 0 ? client_keys_query_local(c, NULL, users, names, keys, err) : -1;
    db_release(r->srv->db, c);
    json_decref(users);
    if (rc < 0) return json_decref(keys), -1;
    json_t *devices = json_array();
    const char *dev;
    json_t *k;
    json_object_foreach(json_object_get(json_object_get(keys, "device_keys"), user_id), dev, k) {
        json_t *d = json_pack("{s:s, s:O}", "device_id", dev, "keys", k);
        json_t *name = json_object_get(json_object_get(k, "unsigned"), "device_display_name");
        if (name) json_object_set(d, "device_display_name", name);
        json_array_append_new(devices, d);
    }
    json_t *res = json_pack("{s:s, s:I, s:o}", "user_id", user_id, "stream_id", (json_int_t)sid,
                            "devices", devices);
    json_t *mk = json_object_get(json_object_get(keys, "master_keys"), user_id);
    json_t *sk = json_object_get(json_object_get(keys, "self_signing_keys"), user_id);
    if (mk) json_object_set(res, "master_key", mk);
    if (sk) json_object_set(res, "self_signing_key", sk);
    json_decref(keys);
    *out = res;
    return 200;
}

/* The request's map of our users, checked: an object of user IDs of this
 * server whose values pass check (devices lists, or device → algorithm). */
static const json_t *local_map(hs_req *r, const char *field, bool (*check)(const json_t *),
                               hs_err *err) {
    const json_t *m = json_object_get(r->json, field);
    if (!json_is_object(m)) {
        hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be a JSON object", field);
        return NULL;
    }
    const char *u;
    json_t *v;
    json_object_foreach((json_t *)m, u, v) {
        if (!fed_user_is_on(u, r->srv->cfg->server_name)) return not_ours(u, err), NULL;
        if (!check(v)) {
            hs_err_set(err, 400, "M_BAD_JSON", "'%s' has a bad entry for %.300s", field, u);
            return NULL;
        }
    }
    return m;
}

static bool device_list(const json_t *v) {
    size_t i;
    json_t *d;
    if (!json_is_array(v)) return false;
    json_array_foreach(v, i, d) if (!json_is_string(d)) return false;
    return true;
}

static bool device_algorithms(const json_t *v) {
    const char *d;
    json_t *a;
    if (!json_is_object(v)) return false;
    json_object_foreach((json_t *)v, d, a) if (!json_is_string(a)) return false;
    return true;
}

static int post_keys_query(hs_req *r, json_t **out, hs_err *err) {
    const json_t *users = local_map(r, "device_keys", device_list, err);
    if (!users) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *res = json_object();
    int rc = client_keys_query_local(c, NULL, users,
                                     r->srv->cfg->allow_device_name_lookup_over_federation, res,
                                     err);
    db_release(r->srv->db, c);
    if (rc < 0) return json_decref(res), -1;
    json_object_del(res, "user_signing_keys"); /* only ever a user's own */
    *out = res;
    return 200;
}

static int post_keys_claim(hs_req *r, json_t **out, hs_err *err) {
    const json_t *otks = local_map(r, "one_time_keys", device_algorithms, err);
    if (!otks) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *keys = json_object();
    int rc = client_keys_claim_local(c, otks, keys, err);
    db_release(r->srv->db, c);
    if (rc < 0) return json_decref(keys), -1;
    *out = json_pack("{s:o}", "one_time_keys", keys);
    return 200;
}

void fed_user_keys_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/user/devices/{userId}", get_user_devices,
             HS_FEDERATION);
    hs_route(rt, "POST", "/_matrix/federation/v1/user/keys/query", post_keys_query, HS_FEDERATION);
    hs_route(rt, "POST", "/_matrix/federation/v1/user/keys/claim", post_keys_claim, HS_FEDERATION);
}
