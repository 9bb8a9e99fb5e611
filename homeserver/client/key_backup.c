/* key_backup.c — /room_keys/version: creating, reading, updating and
 * deleting server-side key backup versions.
 *
 * Versions are the integers 1, 2, … per user; the newest one not deleted is
 * the current backup, the only one keys may be written to. A deleted
 * version keeps its row so its number is never handed out again (Synapse).
 * The server cannot check a backup's keys (they are encrypted to the
 * backup's public key); for m.megolm_backup.v1.curve25519-aes-sha2 it checks
 * that auth_data carries a curve25519 public_key. Other algorithm names are
 * kept opaque, for future algorithms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"

#define MEGOLM_BACKUP_V1 "m.megolm_backup.v1.curve25519-aes-sha2"

bool key_backup_version_number(const char *s, long long *v) {
    if (!s || !*s || strlen(s) > 18) return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return false;
    *v = atoll(s);
    return *v > 0;
}

bool key_backup_better(const key_backup_session *candidate, const key_backup_session *stored) {
    if (candidate->verified != stored->verified) return candidate->verified;
    if (candidate->first_index != stored->first_index)
        return candidate->first_index < stored->first_index;
    return candidate->forwarded < stored->forwarded;
}

int key_backup_current(db_conn *c, const char *user_id, long long *version, long long *etag,
                       hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT version, etag FROM e2e_room_keys_versions WHERE user_id = $1 AND NOT deleted"
        " ORDER BY version DESC LIMIT 1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    int n = PQntuples(r);
    *version = n ? atoll(PQgetvalue(r, 0, 0)) : 0;
    if (etag) *etag = n ? atoll(PQgetvalue(r, 0, 1)) : 0;
    PQclear(r);
    return 0;
}

long long key_backup_count(db_conn *c, const char *user_id, long long version, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT count(*) FROM e2e_room_keys WHERE user_id = $1 AND version = $2");
    char v[24];
    snprintf(v, sizeof v, "%lld", version);
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, v}, err);
    if (!r) return -1;
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* algorithm and auth_data of a POST or PUT body. */
static int check_version_body(const json_t *b, hs_err *err) {
    const json_t *algj = json_object_get(b, "algorithm");
    const char *alg = json_string_value(algj);
    const json_t *auth = json_object_get(b, "auth_data");
    /* Absent: M_MISSING_PARAM; there but of the wrong type: M_BAD_JSON. */
    if (!algj || !auth)
        return hs_err_set(err, 400, "M_MISSING_PARAM", "'%s' is required",
                          !algj ? "algorithm" : "auth_data");
    if (!alg || !*alg) return hs_err_set(err, 400, "M_BAD_JSON", "'algorithm' must be a string");
    if (!json_is_object(auth))
        return hs_err_set(err, 400, "M_BAD_JSON", "'auth_data' must be an object");
    if (!strcmp(alg, MEGOLM_BACKUP_V1)) {
        /* The spec's AuthData: a curve25519 public key (32 bytes). */
        unsigned char pk[32];
        const char *pub = json_string_value(json_object_get(auth, "public_key"));
        if (!pub || e2ee_ed25519_decode(pub, pk) < 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM",
                              "auth_data.public_key must be an unpadded base64 curve25519 key");
        const json_t *sigs = json_object_get(auth, "signatures");
        if (sigs && !json_is_object(sigs))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "auth_data.signatures must be an object");
    }
    return 0;
}

typedef struct create_job {
    const char *user_id;
    const json_t *body;
    long long version;
} create_job;

static int create_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt lock = DB_STMT("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE");
    static db_stmt ins = DB_STMT(
        "INSERT INTO e2e_room_keys_versions (user_id, version, algorithm, auth_data)"
        " SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM e2e_room_keys_versions"
        " WHERE user_id = $1 RETURNING version");
    create_job *j = arg;
    /* Two creations at once must not pick the same number. */
    PGresult *r = db_run(c, &lock, 1, (const char *[]){j->user_id}, err);
    if (!r) return -1;
    PQclear(r);
    char *auth = e2ee_canonical(json_object_get(j->body, "auth_data"), false, err);
    if (!auth) return -1;
    const char *alg = json_string_value(json_object_get(j->body, "algorithm"));
    r = db_run(c, &ins, 3, (const char *[]){j->user_id, alg, auth}, err);
    free(auth);
    if (!r) return -1;
    j->version = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static int post_version(hs_req *r, json_t **out, hs_err *err) {
    if (check_version_body(r->json, err) < 0) return -1;
    create_job j = {r->user_id, r->json, 0};
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = e2ee_txn(c, create_txn, &j, err);
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    char v[24];
    snprintf(v, sizeof v, "%lld", j.version);
    *out = json_pack("{s:s}", "version", v);
    return 200;
}

/* The info of a version (0: the current one), or NULL with 404 M_NOT_FOUND. */
static json_t *version_info(db_conn *c, const char *user_id, long long version, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT version, algorithm, auth_data, etag FROM e2e_room_keys_versions"
        " WHERE user_id = $1 AND NOT deleted AND ($2::bigint = 0 OR version = $2::bigint)"
        " ORDER BY version DESC LIMIT 1");
    char v[24];
    snprintf(v, sizeof v, "%lld", version);
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, v}, err);
    if (!r) return NULL;
    if (!PQntuples(r)) {
        PQclear(r);
        hs_err_set(err, 404, "M_NOT_FOUND", version ? "Unknown backup version"
                                                    : "No current backup version");
        return NULL;
    }
    long long ver = atoll(PQgetvalue(r, 0, 0));
    long long count = key_backup_count(c, user_id, ver, err);
    json_t *auth = e2ee_parse_stored(PQgetvalue(r, 0, 2));
    json_t *o = count < 0 || !auth ? NULL
                                   : json_pack("{s:s, s:s, s:o, s:I, s:s}", "version",
                                               PQgetvalue(r, 0, 0), "algorithm",
                                               PQgetvalue(r, 0, 1), "auth_data", auth, "count",
                                               (json_int_t)count, "etag", PQgetvalue(r, 0, 3));
    if (!o && auth) json_decref(auth);
    if (!o && count >= 0) hs_err_set(err, 500, "M_UNKNOWN", "a stored backup version is corrupt");
    PQclear(r);
    return o;
}

static int get_version(hs_req *r, json_t **out, hs_err *err) {
    long long v = 0;
    /* Versions are numbers: anything else names no backup (Synapse). */
    if (r->n_params && !key_backup_version_number(r->params[0], &v))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    *out = version_info(c, r->user_id, v, err);
    db_release(r->srv->db, c);
    return *out ? 200 : -1;
}

static int put_version(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt alg_q = DB_STMT(
        "SELECT algorithm FROM e2e_room_keys_versions WHERE user_id = $1 AND version = $2"
        " AND NOT deleted");
    static db_stmt up = DB_STMT(
        "UPDATE e2e_room_keys_versions SET auth_data = $3 WHERE user_id = $1 AND version = $2"
        " AND NOT deleted");
    long long v;
    if (check_version_body(r->json, err) < 0) return -1;
    const json_t *bv = json_object_get(r->json, "version");
    if (bv && (!json_is_string(bv) || strcmp(json_string_value(bv), r->params[0]) != 0))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Version in body does not match");
    if (!key_backup_version_number(r->params[0], &v))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &alg_q, 2, (const char *[]){r->user_id, r->params[0]}, err);
    int rc = res ? 200 : -1;
    if (res && !PQntuples(res))
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
    else if (res && strcmp(PQgetvalue(res, 0, 0),
                           json_string_value(json_object_get(r->json, "algorithm"))) != 0)
        rc = hs_err_set(err, 400, "M_INVALID_PARAM", "Algorithm does not match");
    PQclear(res);
    char *auth = rc == 200 ? e2ee_canonical(json_object_get(r->json, "auth_data"), false, err) : NULL;
    if (rc == 200 && (!auth || db_exec(c, &up, 3, (const char *[]){r->user_id, r->params[0], auth},
                                       err) < 0))
        rc = -1;
    free(auth);
    db_release(r->srv->db, c);
    if (rc == 200) *out = json_object();
    return rc;
}

/* Deleting a deleted version succeeds again (the spec); its keys go. */
static int delete_version(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt del = DB_STMT(
        "WITH k AS (DELETE FROM e2e_room_keys WHERE user_id = $1 AND version = $2)"
        " UPDATE e2e_room_keys_versions SET deleted = true WHERE user_id = $1 AND version = $2");
    long long v;
    if (!key_backup_version_number(r->params[0], &v))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    long n = db_exec(c, &del, 2, (const char *[]){r->user_id, r->params[0]}, err);
    db_release(r->srv->db, c);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown backup version");
    *out = json_object();
    return 200;
}

void e2ee_key_backup_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/room_keys/version", post_version, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/room_keys/version", get_version, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/room_keys/version/{version}", get_version,
             HS_AUTH | HS_R0);
    hs_route(rt, "PUT", "/_matrix/client/v3/room_keys/version/{version}", put_version,
             HS_AUTH | HS_R0);
    hs_route(rt, "DELETE", "/_matrix/client/v3/room_keys/version/{version}", delete_version,
             HS_AUTH | HS_R0);
}
