/* room_keys.c — /room_keys/keys[/{roomId}[/{sessionId}]]: the session keys
 * of a server-side key backup, read, written and deleted at three levels.
 *
 * Keys are written to the current backup version only (403
 * M_WRONG_ROOM_KEYS_VERSION with current_version otherwise). When a session
 * is already backed up, the spec's rule decides which copy stays: the one
 * with is_verified, then the lower first_message_index, then the lower
 * forwarded_count; on a tie the stored one. Every change bumps the version's
 * etag. Uploads to one version are serialised by locking its row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"

static int check_session(const json_t *k, const char *room, const char *sid, hs_err *err) {
    const json_t *fmi = json_object_get(k, "first_message_index");
    const json_t *fc = json_object_get(k, "forwarded_count");
    if (!json_is_object(k) || !json_is_integer(fmi) || !json_is_integer(fc) ||
        !json_is_object(json_object_get(k, "session_data")) ||
        !json_object_get(k, "is_verified"))
        return hs_err_set(err, 400, "M_BAD_JSON",
                          "the key for session %s in room %s needs first_message_index, "
                          "forwarded_count, is_verified and session_data", sid, room);
    if (!json_is_boolean(json_object_get(k, "is_verified")))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "is_verified must be a boolean in keys for session %s in room %s", sid,
                          room);
    if (json_integer_value(fmi) < 0 || json_integer_value(fc) < 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "first_message_index and forwarded_count must not be negative");
    return 0;
}

/* The request body as {"rooms": {room: {"sessions": {session: key}}}}
 * whatever the level (a new reference), or NULL with err. */
static json_t *normalise(hs_req *r, hs_err *err) {
    json_t *rooms;
    if (r->n_params == 2) {
        rooms = json_pack("{s:{s:{s:O}}}", r->params[0], "sessions", r->params[1], r->json);
    } else if (r->n_params == 1) {
        rooms = json_pack("{s:O}", r->params[0], r->json);
    } else {
        rooms = json_incref(json_object_get(r->json, "rooms"));
        if (!json_is_object(rooms))
            return json_decref(rooms), hs_err_set(err, 400, "M_BAD_JSON", "'rooms' must be an object"),
                   NULL;
    }
    const char *room, *sid;
    json_t *rv, *k;
    json_object_foreach(rooms, room, rv) {
        json_t *sessions = json_object_get(rv, "sessions");
        if (!json_is_object(sessions)) {
            hs_err_set(err, 400, "M_BAD_JSON", "room %s needs a 'sessions' object", room);
            return json_decref(rooms), NULL;
        }
        json_object_foreach(sessions, sid, k) if (check_session(k, room, sid, err) < 0) return
            json_decref(rooms), NULL;
    }
    return rooms;
}

/* The version named by ?version=: required; a non-number names no backup. */
static int version_param(hs_req *r, long long *v, hs_err *err) {
    const char *s = hs_req_query(r, "version");
    if (!s) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing string query param: version");
    if (!key_backup_version_number(s, v))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
    return 0;
}

/* Lock the (existing, not deleted) version row; its etag into *etag. */
static int lock_version(db_conn *c, const char *user, const char *ver, long long *etag,
                        hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT etag FROM e2e_room_keys_versions WHERE user_id = $1 AND version = $2"
        " AND NOT deleted FOR UPDATE");
    PGresult *r = db_run(c, &q, 2, (const char *[]){user, ver}, err);
    if (!r) return -1;
    int n = PQntuples(r);
    if (n) *etag = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n ? 0 : hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
}

typedef struct keys_job {
    hs_req *r;
    long long version, current, etag, count;
    char ver[24];
    json_t *rooms;  /* normalised body (PUT) */
} keys_job;

/* Store one session unless the stored copy is at least as good. 1 if it
 * changed, 0 if not, -1 on error. */
static int store_session(db_conn *c, keys_job *j, const char *room, const char *sid,
                         const json_t *k, hs_err *err) {
    static db_stmt get = DB_STMT(
        "SELECT is_verified, first_message_index, forwarded_count FROM e2e_room_keys"
        " WHERE user_id = $1 AND version = $2 AND room_id = $3 AND session_id = $4");
    static db_stmt up = DB_STMT(
        "INSERT INTO e2e_room_keys (user_id, version, room_id, session_id, first_message_index,"
        " forwarded_count, is_verified, session_data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (user_id, version, room_id, session_id) DO UPDATE SET"
        " first_message_index = $5, forwarded_count = $6, is_verified = $7, session_data = $8");
    key_backup_session cand = {json_is_true(json_object_get(k, "is_verified")),
                        json_integer_value(json_object_get(k, "first_message_index")),
                        json_integer_value(json_object_get(k, "forwarded_count"))};
    PGresult *r = db_run(c, &get, 4, (const char *[]){j->r->user_id, j->ver, room, sid}, err);
    if (!r) return -1;
    bool replace = true;
    if (PQntuples(r)) {
        key_backup_session stored = {PQgetvalue(r, 0, 0)[0] == 't', atoll(PQgetvalue(r, 0, 1)),
                              atoll(PQgetvalue(r, 0, 2))};
        replace = key_backup_better(&cand, &stored);
    }
    PQclear(r);
    if (!replace) return 0;
    char fmi[24], fc[24];
    snprintf(fmi, sizeof fmi, "%lld", cand.first_index);
    snprintf(fc, sizeof fc, "%lld", cand.forwarded);
    char *data = e2ee_canonical(json_object_get(k, "session_data"), false, err);
    if (!data) return -1;
    const char *p[] = {j->r->user_id, j->ver, room, sid, fmi, fc, cand.verified ? "t" : "f", data};
    long n = db_exec(c, &up, 8, p, err);
    free(data);
    return n < 0 ? -1 : 1;
}

static int bump_etag(db_conn *c, keys_job *j, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE e2e_room_keys_versions SET etag = etag + 1 WHERE user_id = $1 AND version = $2"
        " RETURNING etag");
    PGresult *r = db_run(c, &up, 2, (const char *[]){j->r->user_id, j->ver}, err);
    if (!r) return -1;
    j->etag = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int put_txn(db_conn *c, void *arg, hs_err *err) {
    /* Shares the user row with other uploads, conflicts with creating a
     * version (key_backup.c locks it FOR UPDATE): "current" stays current. */
    static db_stmt share = DB_STMT("SELECT 1 FROM users WHERE user_id = $1 FOR SHARE");
    keys_job *j = arg;
    PGresult *r = db_run(c, &share, 1, (const char *[]){j->r->user_id}, err);
    if (!r) return -1;
    PQclear(r);
    if (key_backup_current(c, j->r->user_id, &j->current, NULL, err) < 0 ||
        lock_version(c, j->r->user_id, j->ver, &j->etag, err) < 0)
        return -1;
    if (j->current != j->version) return hs_err_set(err, 403, "M_WRONG_ROOM_KEYS_VERSION",
                                                    "Wrong backup version.");
    bool changed = false;
    const char *room, *sid;
    json_t *rv, *k;
    json_object_foreach(j->rooms, room, rv) json_object_foreach(json_object_get(rv, "sessions"), sid, k) {
        int rc = store_session(c, j, room, sid, k, err);
        if (rc < 0) return -1;
        changed |= rc == 1;
    }
    if (changed && bump_etag(c, j, err) < 0) return -1;
    return (j->count = key_backup_count(c, j->r->user_id, j->version, err)) < 0 ? -1 : 0;
}

static int put_keys(hs_req *r, json_t **out, hs_err *err) {
    keys_job j = {.r = r};
    if (version_param(r, &j.version, err) < 0 || !(j.rooms = normalise(r, err))) return -1;
    snprintf(j.ver, sizeof j.ver, "%lld", j.version);
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c ? e2ee_txn(c, put_txn, &j, err) : -1;
    db_release(r->srv->db, c);
    json_decref(j.rooms);
    if (rc < 0 && !strcmp(err->errcode, "M_WRONG_ROOM_KEYS_VERSION")) {
        /* The spec's error carries the current version. */
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", j.current);
        *out = json_pack("{s:s, s:s, s:s}", "errcode", err->errcode, "error", err->msg,
                         "current_version", cur);
        return 403;
    }
    if (rc < 0) return -1;
    char etag[24];
    snprintf(etag, sizeof etag, "%lld", j.etag);
    *out = json_pack("{s:s, s:I}", "etag", etag, "count", (json_int_t)j.count);
    return 200;
}

/* ---- GET and DELETE ------------------------------------------------------ */

/* Optional room and session filters from the path ("" = any). */
static void path_filters(hs_req *r, const char **room, const char **sid) {
    *room = r->n_params >= 1 ? r->params[0] : "";
    *sid = r->n_params >= 2 ? r->params[1] : "";
}

static int get_keys(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified,"
        " session_data FROM e2e_room_keys WHERE user_id = $1 AND version = $2"
        " AND ($3 = '' OR room_id = $3) AND ($4 = '' OR session_id = $4)");
    long long v, etag;
    if (version_param(r, &v, err) < 0) return -1;
    char ver[24];
    snprintf(ver, sizeof ver, "%lld", v);
    const char *room, *sid;
    path_filters(r, &room, &sid);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = lock_version(c, r->user_id, ver, &etag, err) == 0
                        ? db_run(c, &q, 4, (const char *[]){r->user_id, ver, room, sid}, err)
                        : NULL;
    db_release(r->srv->db, c);
    if (!res) return -1;
    json_t *rooms = json_object();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *data = e2ee_parse_stored(PQgetvalue(res, i, 5));
        if (!data) continue;
        json_t *k = json_pack("{s:I, s:I, s:b, s:o}", "first_message_index",
                              (json_int_t)atoll(PQgetvalue(res, i, 2)), "forwarded_count",
                              (json_int_t)atoll(PQgetvalue(res, i, 3)), "is_verified",
                              PQgetvalue(res, i, 4)[0] == 't', "session_data", data);
        json_t *rv = json_object_get(rooms, PQgetvalue(res, i, 0));
        if (!rv) json_object_set_new(rooms, PQgetvalue(res, i, 0), rv = json_pack("{s:{}}", "sessions"));
        json_object_set_new(json_object_get(rv, "sessions"), PQgetvalue(res, i, 1), k);
    }
    PQclear(res);
    if (r->n_params == 0) {
        *out = json_pack("{s:o}", "rooms", rooms);
    } else if (r->n_params == 1) {
        json_t *rv = json_object_get(rooms, room);
        *out = rv ? json_incref(rv) : json_pack("{s:{}}", "sessions");
        json_decref(rooms);
    } else {
        json_t *k = json_object_get(json_object_get(json_object_get(rooms, room), "sessions"), sid);
        *out = json_incref(k);
        json_decref(rooms);
        if (!k) return hs_err_set(err, 404, "M_NOT_FOUND", "Key not found.");
    }
    return 200;
}

static int delete_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt del = DB_STMT(
        "DELETE FROM e2e_room_keys WHERE user_id = $1 AND version = $2"
        " AND ($3 = '' OR room_id = $3) AND ($4 = '' OR session_id = $4)");
    keys_job *j = arg;
    const char *room, *sid;
    path_filters(j->r, &room, &sid);
    if (lock_version(c, j->r->user_id, j->ver, &j->etag, err) < 0 ||
        db_exec(c, &del, 4, (const char *[]){j->r->user_id, j->ver, room, sid}, err) < 0 ||
        bump_etag(c, j, err) < 0)
        return -1;
    return (j->count = key_backup_count(c, j->r->user_id, j->version, err)) < 0 ? -1 : 0;
}

/* Deleting always bumps the etag, as Synapse does. */
static int delete_keys(hs_req *r, json_t **out, hs_err *err) {
    keys_job j = {.r = r};
    if (version_param(r, &j.version, err) < 0) return -1;
    snprintf(j.ver, sizeof j.ver, "%lld", j.version);
    db_conn *c = db_acquire(r->srv->db, err);
    int rc = c ? e2ee_txn(c, delete_txn, &j, err) : -1;
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    char etag[24];
    snprintf(etag, sizeof etag, "%lld", j.etag);
    *out = json_pack("{s:s, s:I}", "etag", etag, "count", (json_int_t)j.count);
    return 200;
}

void e2ee_room_keys_routes(hs_router *rt) {
    static const char *const paths[] = {
        "/_matrix/client/v3/room_keys/keys",
        "/_matrix/client/v3/room_keys/keys/{roomId}",
        "/_matrix/client/v3/room_keys/keys/{roomId}/{sessionId}",
    };
    for (int i = 0; i < 3; i++) {
        hs_route(rt, "GET", paths[i], get_keys, HS_AUTH | HS_R0);
        hs_route(rt, "PUT", paths[i], put_keys, HS_AUTH | HS_R0);
        hs_route(rt, "DELETE", paths[i], delete_keys, HS_AUTH | HS_R0);
    }
}
