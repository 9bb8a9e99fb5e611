/* dehydrated_device.c — dehydrated devices (MSC3814, the unstable
 * org.matrix.msc3814.v1 endpoints Element ships): a device without an access
 * token whose keys receive room keys while the user has no device online;
 * a later login downloads the encrypted account (device_data) and the
 * to-device messages the dehydrated device got, and rehydrates it.
 *
 * A user has at most one: uploading a new one deletes the old device (its
 * keys and inbox go with it). Its to-device messages stay until it is
 * replaced or deleted; /events pages through them with "d<position>"
 * tokens, giving next_batch only while more follow (Synapse). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "homeserver/core/clock.h"
#include "homeserver/http/auth_cache.h"
#include "homeserver/db/streams.h"

#define MSC3814 "/_matrix/client/unstable/org.matrix.msc3814.v1"

typedef struct dehydrate_job {
    hs_req *r;
    const char *device_id;
    char *old;          /* the replaced dehydrated device, if any */
    long long pos;
} dehydrate_job;

/* The user's dehydrated device ID (malloc'd), or NULL (err set on failure). */
static char *current_device(db_conn *c, const char *user_id, json_t **data, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT device_id, device_data FROM e2e_dehydrated_devices WHERE user_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return NULL;
    char *id = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (id && data) *data = e2ee_parse_stored(PQgetvalue(r, 0, 1));
    PQclear(r);
    return id;
}

static int put_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt lock = DB_STMT("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE");
    static db_stmt taken = DB_STMT("SELECT 1 FROM devices WHERE user_id = $1 AND device_id = $2");
    static db_stmt del = DB_STMT("DELETE FROM devices WHERE user_id = $1 AND device_id = $2");
    static db_stmt dev = DB_STMT(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES ($1, $2, $3, $4)");
    static db_stmt ins = DB_STMT(
        "INSERT INTO e2e_dehydrated_devices (user_id, device_id, device_data, created_ts)"
        " VALUES ($1, $2, $3, $4)");
    dehydrate_job *j = arg;
    const char *uid = j->r->user_id;
    PGresult *res = db_run(c, &lock, 1, (const char *[]){uid}, err);
    if (!res) return -1;
    PQclear(res);
    free(j->old);
    if (!(j->old = current_device(c, uid, NULL, err)) && err->status) return -1;
    if (j->old) hs_auth_cache_forget_all();
    if (j->old && db_exec(c, &del, 2, (const char *[]){uid, j->old}, err) < 0) return -1;
    /* Never take over a device the user logs in with. */
    if (!(res = db_run(c, &taken, 2, (const char *[]){uid, j->device_id}, err))) return -1;
    int n = PQntuples(res);
    PQclear(res);
    if (n) return hs_err_set(err, 400, "M_INVALID_PARAM", "device ID %s is in use", j->device_id);
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const json_t *name = json_object_get(j->r->json, "initial_device_display_name");
    char *data = e2ee_canonical(json_object_get(j->r->json, "device_data"), false, err);
    int rc = data && db_exec(c, &dev, 4, (const char *[]){uid, j->device_id, json_string_value(name), now},
                             err) >= 0 &&
                     db_exec(c, &ins, 4, (const char *[]){uid, j->device_id, data, now}, err) >= 0
                 ? 0
                 : -1;
    free(data);
    if (rc < 0) return -1;
    e2ee_dev d = {uid, j->device_id};
    if (e2ee_keys_store(c, &d, j->r->json, &j->pos, err) < 0) return -1;
    /* The old device is gone: those sharing a room must re-query. */
    if (j->old && (e2ee_dl_reserve(c, &j->pos, err) < 0 ||
                   e2ee_dl_record(c, j->pos, uid, j->old, NULL, err) < 0))
        return -1;
    return 0;
}

static int put_dehydrated(hs_req *r, json_t **out, hs_err *err) {
    const json_t *id = json_object_get(r->json, "device_id");
    const json_t *name = json_object_get(r->json, "initial_device_display_name");
    if (!json_is_string(id) || !*json_string_value(id))
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_id' must be a string");
    if (!json_is_object(json_object_get(r->json, "device_data")))
        return hs_err_set(err, 400, "M_BAD_JSON", "'device_data' must be an object");
    if (name && !json_is_string(name) && !json_is_null(name))
        return hs_err_set(err, 400, "M_BAD_JSON", "'initial_device_display_name' must be a string");
    if (!json_is_object(json_object_get(r->json, "device_keys")))
        return hs_err_set(err, 400, "M_BAD_JSON", "Device key(s) not found, these must be provided.");
    dehydrate_job j = {.r = r, .device_id = json_string_value(id)};
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = e2ee_txn(c, put_txn, &j, err);
    if (j.pos > 0) e2ee_dl_done(c, j.pos, r->user_id, NULL);
    db_release(r->srv->db, c);
    free(j.old);
    if (rc < 0) return -1;
    *out = json_pack("{s:s}", "device_id", j.device_id);
    return 200;
}

static int get_dehydrated(hs_req *r, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *data = NULL;
    char *id = current_device(c, r->user_id, &data, err);
    db_release(r->srv->db, c);
    if (!id) return err->status ? -1 : hs_err_set(err, 404, "M_NOT_FOUND", "No dehydrated device available");
    *out = json_pack("{s:s, s:o}", "device_id", id, "device_data", data ? data : json_object());
    free(id);
    return 200;
}

static int delete_dehydrated(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt del = DB_STMT(
        "DELETE FROM devices d USING e2e_dehydrated_devices h WHERE h.user_id = $1"
        " AND d.user_id = h.user_id AND d.device_id = h.device_id RETURNING d.device_id");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    hs_auth_cache_forget_all();
    PGresult *res = db_run(c, &del, 1, (const char *[]){r->user_id}, err);
    char *id = res && PQntuples(res) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    int rc = res ? 0 : -1;
    if (id) rc = client_e2ee_devices_changed(c, r->user_id, (const char *const[]){id}, 1, err);
    db_release(r->srv->db, c);
    if (rc == 0 && !id) rc = hs_err_set(err, 404, "M_NOT_FOUND", "No dehydrated device available");
    if (rc == 0) *out = json_pack("{s:s}", "device_id", id);
    free(id);
    return rc == 0 ? 200 : -1;
}

/* "d<position>" → position; NULL/empty → 0. */
static int parse_from(const char *s, long long *pos, hs_err *err) {
    *pos = 0;
    if (!s || !*s) return 0;
    char *end = NULL;
    if (s[0] != 'd' || !s[1] || (*pos = strtoll(s + 1, &end, 10)) < 0 || *end)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "from parameter '%s' has an invalid format", s);
    return 0;
}

static int dehydrated_events(hs_req *r, json_t **out, bool always_next, hs_err *err) {
    static db_stmt sel = DB_STMT(
        "SELECT stream_id, message_json FROM device_inbox WHERE user_id = $1 AND device_id = $2"
        " AND stream_id > $3 AND stream_id <= $4 ORDER BY stream_id LIMIT 100");
    const char *from = always_next ? json_string_value(json_object_get(r->json, "next_batch"))
                                   : hs_req_query(r, "from");
    long long since;
    if (parse_from(from, &since, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char *id = current_device(c, r->user_id, NULL, err);
    if (!id || strcmp(id, r->params[0]) != 0) {
        db_release(r->srv->db, c);
        free(id);
        return err->status >= 500 ? -1
                                  : hs_err_set(err, 403, "M_FORBIDDEN",
                                               "You may only fetch messages for your dehydrated device");
    }
    char s[24], t[24];
    snprintf(s, sizeof s, "%lld", since);
    snprintf(t, sizeof t, "%lld", db_stream_current(DB_STREAM_TO_DEVICE));
    PGresult *res = db_run(c, &sel, 4, (const char *[]){r->user_id, id, s, t}, err);
    db_release(r->srv->db, c);
    free(id);
    if (!res) return -1;
    json_t *events = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        json_t *ev = e2ee_parse_stored(PQgetvalue(res, i, 1));
        if (ev) json_array_append_new(events, ev);
    }
    char next[32];
    snprintf(next, sizeof next, "d%lld", n ? atoll(PQgetvalue(res, n - 1, 0)) : since);
    PQclear(res);
    *out = json_pack("{s:o}", "events", events);
    if (n == 100 || always_next) json_object_set_new(*out, "next_batch", json_string(next));
    return 200;
}

static int get_events(hs_req *r, json_t **out, hs_err *err) {
    return dehydrated_events(r, out, false, err);
}

/* The earlier draft's POST, kept by Synapse for older clients. */
static int post_events(hs_req *r, json_t **out, hs_err *err) {
    return dehydrated_events(r, out, true, err);
}

void e2ee_dehydrated_routes(hs_router *rt) {
    hs_route(rt, "PUT", MSC3814 "/dehydrated_device", put_dehydrated, HS_AUTH);
    hs_route(rt, "GET", MSC3814 "/dehydrated_device", get_dehydrated, HS_AUTH);
    hs_route(rt, "DELETE", MSC3814 "/dehydrated_device", delete_dehydrated, HS_AUTH);
    hs_route(rt, "GET", MSC3814 "/dehydrated_device/{deviceId}/events", get_events, HS_AUTH);
    hs_route(rt, "POST", MSC3814 "/dehydrated_device/{deviceId}/events", post_events, HS_AUTH);
}
