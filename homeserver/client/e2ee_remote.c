/* e2ee_remote.c — what other servers push about their users' devices and
 * keys, kept in the tables local users' keys live in (007_e2ee.sql: origin
 * tells the two apart), on the same streams, so /sync, /keys/query and
 * /keys/changes serve them as they serve local ones. */
#include "e2ee_remote.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/db/streams.h"
#include "notifier.h"

static bool user_of(const char *user_id, const char *server) {
    const char *s = user_id ? e2ee_user_server(user_id) : NULL;
    return s && !strcmp(s, server);
}

/* Do we share a room with user_id (is anyone here interested)? */
static int shared(db_conn *c, const char *user_id, hs_err *err) {
    size_t n = 0;
    char **rooms = e2ee_joined_rooms(c, user_id, &n, err);
    if (!rooms) return -1;
    e2ee_strv_free(rooms);
    return n > 0;
}

/* ---- device lists ---- */

typedef struct dev_job {
    const char *user_id, *device_id, *display_name;
    char *key_json; /* the new keys, or NULL */
    bool deleted;   /* neither: only "something changed" is recorded */
    long long pos;
} dev_job;

static int dev_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt up =
        DB_STMT("INSERT INTO e2e_device_keys (user_id, device_id, key_json, display_name, added_ts)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id) DO UPDATE"
                " SET key_json = EXCLUDED.key_json, display_name = EXCLUDED.display_name");
    static db_stmt del =
        DB_STMT("DELETE FROM e2e_device_keys WHERE user_id = $1 AND device_id = $2");
    dev_job *j = arg;
    if (e2ee_dl_reserve(c, &j->pos, err) < 0) return -1;
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    long n = 0;
    if (j->deleted) n = db_exec(c, &del, 2, (const char *[]){j->user_id, j->device_id}, err);
    else if (j->key_json)
        n = db_exec(c, &up, 5,
                    (const char *[]){j->user_id, j->device_id, j->key_json, j->display_name, now},
                    err);
    if (n < 0) return -1;
    return e2ee_dl_record(c, j->pos, j->user_id, j->device_id, NULL, err);
}

int client_e2ee_remote_device_update(hs_server *srv, const char *origin, const json_t *content,
                                     hs_err *err) {
    const char *user_id = json_string_value(json_object_get(content, "user_id"));
    const char *device_id = json_string_value(json_object_get(content, "device_id"));
    const json_t *keys = json_object_get(content, "keys");
    if (!user_of(user_id, origin) || !device_id || !*device_id)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "not a device of a user of %s", origin);
    bool deleted = json_is_true(json_object_get(content, "deleted"));
    if (!deleted && keys &&
        (!json_is_object(keys) ||
         strcmp(json_string_value(json_object_get(keys, "user_id")) ?: "", user_id) ||
         strcmp(json_string_value(json_object_get(keys, "device_id")) ?: "", device_id)))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "keys of another device");
    dev_job j = {.user_id = user_id,
                 .device_id = device_id,
                 .deleted = deleted,
                 .display_name =
                     json_string_value(json_object_get(content, "device_display_name"))};
    if (!deleted && keys && !(j.key_json = hs_json_canonical(keys, NULL, err))) return -1;
    db_conn *c = db_acquire(srv->db, err);
    int rc = c ? shared(c, user_id, err) : -1;
    if (rc > 0) {
        rc = e2ee_txn(c, dev_txn, &j, err);
        e2ee_dl_done(c, j.pos, user_id, NULL);
    }
    db_release(srv->db, c);
    free(j.key_json);
    return rc < 0 ? -1 : 0;
}

/* ---- cross-signing keys ---- */

typedef struct csk_job {
    const char *user_id;
    const json_t *keys[2]; /* master, self_signing (either may be NULL) */
    long long pos;
} csk_job;

static int csk_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO e2e_cross_signing_keys (user_id, keytype, public_key, key_json, stream_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, keytype) DO UPDATE"
        " SET public_key = EXCLUDED.public_key, key_json = EXCLUDED.key_json,"
        " stream_id = EXCLUDED.stream_id");
    static const char *const types[] = {"master", "self_signing"};
    csk_job *j = arg;
    if (e2ee_dl_reserve(c, &j->pos, err) < 0) return -1;
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    for (int i = 0; i < 2; i++) {
        if (!j->keys[i]) continue;
        const char *pk = e2ee_cs_key_public(j->keys[i]);
        char *text = hs_json_canonical(j->keys[i], NULL, err);
        long n =
            text ? db_exec(c, &up, 5, (const char *[]){j->user_id, types[i], pk, text, pos}, err)
                 : -1;
        free(text);
        if (n < 0 || e2ee_dl_record(c, j->pos, j->user_id, pk, NULL, err) < 0) return -1;
    }
    return 0;
}

/* A CrossSigningKey of user_id with the usage it is sent as. */
static const json_t *cs_key(const json_t *k, const char *user_id, const char *usage) {
    const char *owner = json_string_value(json_object_get(k, "user_id"));
    const json_t *usages = json_object_get(k, "usage");
    bool has = false;
    size_t i;
    json_t *u;
    json_array_foreach(usages, i, u) has |=
        json_is_string(u) && !strcmp(json_string_value(u), usage);
    return json_is_object(k) && owner && !strcmp(owner, user_id) && has && e2ee_cs_key_public(k)
               ? k
               : NULL;
}

int client_e2ee_remote_signing_key_update(hs_server *srv, const char *origin, const json_t *content,
                                          hs_err *err) {
    const char *user_id = json_string_value(json_object_get(content, "user_id"));
    if (!user_of(user_id, origin))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "not a user of %s", origin);
    csk_job j = {
        .user_id = user_id,
        .keys = {cs_key(json_object_get(content, "master_key"), user_id, "master"),
                 cs_key(json_object_get(content, "self_signing_key"), user_id, "self_signing")}};
    if (!j.keys[0] && !j.keys[1]) return hs_err_set(err, 400, "M_INVALID_PARAM", "no usable key");
    db_conn *c = db_acquire(srv->db, err);
    int rc = c ? shared(c, user_id, err) : -1;
    if (rc > 0) {
        rc = e2ee_txn(c, csk_txn, &j, err);
        e2ee_dl_done(c, j.pos, user_id, NULL);
    }
    db_release(srv->db, c);
    return rc < 0 ? -1 : 0;
}

/* ---- to-device messages ---- */

typedef struct td_job {
    const char *origin, *sender, *type, *message_id;
    const json_t *messages;
    long long pos;
    bool duplicate;
    json_t *woken; /* users to wake (set) */
} td_job;

static int td_claim(db_conn *c, td_job *j, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO fed_to_device_seen (origin, message_id, received_ts) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING");
    static db_stmt old = DB_STMT("DELETE FROM fed_to_device_seen WHERE received_ts < $1");
    char now[24], week_ago[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    snprintf(week_ago, sizeof week_ago, "%lld", hs_now_ms() - 7LL * 24 * 3600 * 1000);
    if (db_exec(c, &old, 1, (const char *[]){week_ago}, err) < 0) return -1;
    long n = db_exec(c, &ins, 3, (const char *[]){j->origin, j->message_id, now}, err);
    if (n < 0) return -1;
    j->duplicate = n == 0;
    return 0;
}

static int td_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt one = DB_STMT(
        "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
        " SELECT user_id, device_id, $3, $4 FROM devices WHERE user_id = $1 AND device_id = $2"
        " ON CONFLICT DO NOTHING");
    static db_stmt all = DB_STMT(
        "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
        " SELECT user_id, device_id, $2, $3 FROM devices WHERE user_id = $1 ON CONFLICT DO NOTHING");
    td_job *j = arg;
    if (td_claim(c, j, err) < 0) return -1;
    if (j->duplicate) return 0;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_TO_DEVICE, err)) < 0) return -1;
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    const char *uid;
    json_t *by_dev;
    json_object_foreach((json_t *)j->messages, uid, by_dev) {
        const char *did;
        json_t *msg;
        json_object_foreach(by_dev, did, msg) {
            if (!json_is_object(msg)) continue;
            json_t *ev =
                json_pack("{s:s, s:s, s:O}", "sender", j->sender, "type", j->type, "content", msg);
            char *text = hs_json_canonical(ev, NULL, err);
            json_decref(ev);
            long n = !text ? -1
                     : strcmp(did, "*")
                         ? db_exec(c, &one, 4, (const char *[]){uid, did, pos, text}, err)
                         : db_exec(c, &all, 3, (const char *[]){uid, pos, text}, err);
            free(text);
            if (n < 0) return -1;
            if (n > 0) json_object_set_new(j->woken, uid, json_true());
        }
    }
    return 0;
}

int client_e2ee_remote_to_device(hs_server *srv, const char *origin, const json_t *content,
                                 hs_err *err) {
    td_job j = {.origin = origin,
                .sender = json_string_value(json_object_get(content, "sender")),
                .type = json_string_value(json_object_get(content, "type")),
                .message_id = json_string_value(json_object_get(content, "message_id")),
                .messages = json_object_get(content, "messages")};
    if (!user_of(j.sender, origin) || !j.type || !j.message_id || !json_is_object(j.messages))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "a malformed m.direct_to_device");
    j.woken = json_object();
    int rc = db_txn(srv->db, td_txn, &j, err);
    if (j.pos > 0) db_stream_done(DB_STREAM_TO_DEVICE, j.pos);
    const char *uid;
    json_t *v;
    json_object_foreach(j.woken, uid, v) if (rc == 0)
        hs_notify_users((const char *const[]){uid}, 1);
    json_decref(j.woken);
    return rc;
}

/* ---- following remote device lists (sql/017) ---- */

int client_e2ee_remote_device_state(hs_server *srv, const char *user_id, long long *stream_id,
                                    hs_err *err) {
    static db_stmt q = DB_STMT("SELECT stream_id FROM fed_device_list_remote WHERE user_id = $1");
    db_conn *c = db_acquire(srv->db, err);
    int rc = c ? shared(c, user_id, err) : -1;
    PGresult *r = rc > 0 ? db_run(c, &q, 1, (const char *[]){user_id}, err) : NULL;
    if (rc > 0 && !r) rc = -1;
    else if (r && PQntuples(r)) rc = 2, *stream_id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    db_release(srv->db, c);
    return rc;
}

int client_e2ee_remote_device_stream(hs_server *srv, const char *user_id, long long stream_id,
                                     hs_err *err) {
    static db_stmt up =
        DB_STMT("UPDATE fed_device_list_remote SET stream_id = $2 WHERE user_id = $1");
    char sid[24];
    snprintf(sid, sizeof sid, "%lld", stream_id);
    db_conn *c = db_acquire(srv->db, err);
    long n = c ? db_exec(c, &up, 2, (const char *[]){user_id, sid}, err) : -1;
    db_release(srv->db, c);
    return n < 0 ? -1 : 0;
}

typedef struct resync_job {
    const char *user_id;
    const json_t *devices;
    const json_t *keys[2]; /* master, self_signing */
    long long stream_id, pos;
} resync_job;

/* One device of a /user/devices answer, checked: its ID, its keys when they
 * are this device's (NULL otherwise), its display name. */
static const char *resync_device(const json_t *d, const char *user_id, const json_t **keys,
                                 const char **name) {
    const char *id = json_string_value(json_object_get(d, "device_id"));
    const json_t *k = json_object_get(d, "keys");
    *name = json_string_value(json_object_get(d, "device_display_name"));
    *keys = json_is_object(k) &&
                    !strcmp(json_string_value(json_object_get(k, "user_id")) ?: "", user_id) &&
                    id && !strcmp(json_string_value(json_object_get(k, "device_id")) ?: "", id)
                ? k
                : NULL;
    return id && *id ? id : NULL;
}

static int resync_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt gone = DB_STMT(
        "DELETE FROM e2e_device_keys WHERE user_id = $1 AND NOT device_id = ANY($2::text[])");
    static db_stmt up =
        DB_STMT("INSERT INTO e2e_device_keys (user_id, device_id, key_json, display_name, added_ts)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, device_id) DO UPDATE"
                " SET key_json = EXCLUDED.key_json, display_name = EXCLUDED.display_name");
    static db_stmt follow = DB_STMT(
        "INSERT INTO fed_device_list_remote (user_id, stream_id, resynced_ts) VALUES ($1, $2, $3)"
        " ON CONFLICT (user_id) DO UPDATE SET stream_id = $2, resynced_ts = $3");
    resync_job *j = arg;
    if (e2ee_dl_reserve(c, &j->pos, err) < 0) return -1;
    char now[24], sid[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    snprintf(sid, sizeof sid, "%lld", j->stream_id);
    size_t n = json_array_size(j->devices), k = 0, i;
    const char **ids = calloc(n + 1, sizeof *ids);
    if (!ids) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    int rc = 0;
    json_t *d;
    json_array_foreach(j->devices, i, d) {
        const json_t *keys;
        const char *name, *id = resync_device(d, j->user_id, &keys, &name);
        if (!id) continue;
        ids[k++] = id;
        char *text = keys ? hs_json_canonical(keys, NULL, err) : NULL;
        if (keys && !text) rc = -1;
        else if (text && db_exec(c, &up, 5, (const char *[]){j->user_id, id, text, name, now},
                                 err) < 0)
            rc = -1;
        free(text);
        if (rc < 0) break;
    }
    char *arr = rc == 0 ? db_text_array(ids, k) : NULL;
    free(ids);
    if (rc < 0 || !arr ||
        db_exec(c, &gone, 2, (const char *[]){j->user_id, arr}, err) < 0 ||
        db_exec(c, &follow, 3, (const char *[]){j->user_id, sid, now}, err) < 0)
        rc = -1;
    free(arr);
    if (rc < 0) return -1;
    csk_job cj = {.user_id = j->user_id, .keys = {j->keys[0], j->keys[1]}, .pos = j->pos};
    if ((cj.keys[0] || cj.keys[1]) && csk_txn(c, &cj, err) < 0) return -1;
    return e2ee_dl_record(c, j->pos, j->user_id, NULL, NULL, err);
}

int client_e2ee_remote_devices_resynced(hs_server *srv, const char *user_id, const json_t *resp,
                                        hs_err *err) {
    const json_t *sid = json_object_get(resp, "stream_id");
    resync_job j = {
        .user_id = user_id,
        .devices = json_object_get(resp, "devices"),
        .keys = {cs_key(json_object_get(resp, "master_key"), user_id, "master"),
                 cs_key(json_object_get(resp, "self_signing_key"), user_id, "self_signing")}};
    if (!json_is_integer(sid) || json_integer_value(sid) < 0 || !json_is_array(j.devices))
        return hs_err_set(err, 400, "M_BAD_JSON", "not a device list: stream_id, devices");
    j.stream_id = json_integer_value(sid);
    db_conn *c = db_acquire(srv->db, err);
    int rc = c ? e2ee_txn(c, resync_txn, &j, err) : -1;
    if (c) e2ee_dl_done(c, j.pos, user_id, NULL);
    db_release(srv->db, c);
    return rc < 0 ? -1 : 0;
}

json_t *client_e2ee_remote_followed(db_conn *c, json_t *users, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT f.user_id FROM fed_device_list_remote f WHERE f.user_id = ANY($1::text[])"
        " AND EXISTS (SELECT 1 FROM current_state cs WHERE cs.type = 'm.room.member'"
        "  AND cs.state_key = f.user_id AND cs.membership = 'join')");
    size_t n = 0;
    const char **ids = calloc(json_object_size(users) + 1, sizeof *ids);
    const char *u;
    json_t *v;
    json_object_foreach(users, u, v) if (ids) ids[n++] = u;
    char *arr = ids ? db_text_array(ids, n) : NULL;
    free(ids);
    PGresult *r = arr ? db_run(c, &q, 1, (const char *[]){arr}, err) : NULL;
    free(arr);
    if (!r) return NULL;
    json_t *out = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *uid = PQgetvalue(r, i, 0);
        json_object_set(out, uid, json_object_get(users, uid));
        json_object_del(users, uid);
    }
    PQclear(r);
    return out;
}
