/* pushers.c — GET /pushers and POST /pushers/set.
 *
 * Pushers are stored and listed; sending to push gateways is not done yet
 * (a separate piece of work). Email pushers need an email address bound to
 * the account, and this server binds none, so they are refused the way
 * Synapse refuses an unbound address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "push_rules.h"

#define MAX_PUSHKEY_BYTES 512
#define MAX_APP_ID_CHARS 64
#define NOTIFY_PATH "/_matrix/push/v1/notify"

static int get_pushers(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT pushkey, kind, app_id, app_display_name, device_display_name, profile_tag, lang,"
        " data::text FROM pushers WHERE user_id = $1 ORDER BY created_ts, app_id, pushkey");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 1, (const char *[]){r->user_id}, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *data = json_loads(PQgetvalue(res, i, 7), 0, NULL);
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "pushkey",
                            PQgetvalue(res, i, 0), "kind", PQgetvalue(res, i, 1), "app_id",
                            PQgetvalue(res, i, 2), "app_display_name", PQgetvalue(res, i, 3),
                            "device_display_name", PQgetvalue(res, i, 4), "profile_tag",
                            PQgetvalue(res, i, 5), "lang", PQgetvalue(res, i, 6), "data",
                            data ? data : json_object()));
    }
    PQclear(res);
    *out = json_pack("{s:o}", "pushers", list);
    return 200;
}

/* A string field: NULL with M_INVALID_PARAM if present and not a string. */
static const char *str_field(const json_t *body, const char *key, bool *bad, hs_err *err) {
    const json_t *v = json_object_get(body, key);
    if (v && !json_is_string(v)) {
        *bad = true;
        hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be a string", key);
    }
    return json_string_value(v);
}

/* The push gateway URL: http(s), with the path the spec requires. */
static int check_url(const json_t *data, hs_err *err) {
    const json_t *u = json_object_get(data, "url");
    if (!u) return hs_err_set(err, 400, "M_MISSING_PARAM", "'data.url' is required for http pushers");
    const char *url = json_string_value(u);
    if (!url) return hs_err_set(err, 400, "M_INVALID_PARAM", "'data.url' must be a string");
    const char *rest = !strncmp(url, "https://", 8) ? url + 8 : !strncmp(url, "http://", 7) ? url + 7 : NULL;
    const char *path = rest ? strchr(rest, '/') : NULL;
    size_t plen = path ? strcspn(path, "?#") : 0;
    if (!rest || !path || path == rest || plen != strlen(NOTIFY_PATH) ||
        strncmp(path, NOTIFY_PATH, plen) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "'data.url' must be an http(s) URL with the path " NOTIFY_PATH);
    const json_t *fmt = json_object_get(data, "format");
    if (fmt && !json_is_string(fmt))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'data.format' must be a string");
    return 0;
}

static long delete_pusher(db_conn *c, const char *user_id, const char *app_id,
                          const char *pushkey, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM pushers WHERE user_id = $1 AND app_id = $2"
                                 " AND pushkey = $3");
    return db_exec(c, &del, 3, (const char *[]){user_id, app_id, pushkey}, err);
}

typedef struct set_job {
    const char *user_id, *device_id, *kind, *app_id, *pushkey, *app_name, *dev_name, *tag, *lang;
    char *data;
    bool append;
} set_job;

static int set_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt others = DB_STMT("DELETE FROM pushers WHERE app_id = $1 AND pushkey = $2"
                                    " AND user_id <> $3");
    /* The device of an existing pusher stays: another device may edit it. */
    static db_stmt up = DB_STMT(
        "INSERT INTO pushers (user_id, app_id, pushkey, kind, app_display_name,"
        " device_display_name, profile_tag, lang, data, device_id, created_ts)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11::bigint)"
        " ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = EXCLUDED.kind,"
        " app_display_name = EXCLUDED.app_display_name,"
        " device_display_name = EXCLUDED.device_display_name,"
        " profile_tag = EXCLUDED.profile_tag, lang = EXCLUDED.lang, data = EXCLUDED.data");
    set_job *j = arg;
    if (!j->append &&
        db_exec(c, &others, 3, (const char *[]){j->app_id, j->pushkey, j->user_id}, err) < 0)
        return -1;
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *p[] = {j->user_id, j->app_id, j->pushkey, j->kind, j->app_name, j->dev_name,
                       j->tag ? j->tag : "", j->lang, j->data, j->device_id, now};
    return db_exec(c, &up, 11, p, err) < 0 ? -1 : 0;
}

/* Required fields when kind is not null, named all at once as the spec's example does. */
static int check_missing(const json_t *body, hs_err *err) {
    static const char *const req[] = {"kind", "app_id", "app_display_name",
                                      "device_display_name", "pushkey", "lang", "data"};
    char missing[160] = "";
    for (size_t i = 0; i < sizeof req / sizeof *req; i++) {
        if (json_object_get(body, req[i])) continue;
        size_t n = strlen(missing);
        snprintf(missing + n, sizeof missing - n, "%s%s", n ? ", " : "", req[i]);
    }
    if (*missing) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing parameters: %s", missing);
    return 0;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int check_fields(const json_t *body, set_job *j, hs_err *err) {
    bool bad = false;
    j->app_id = str_field(body, "app_id", &bad, err);
    if (!bad) j->pushkey = str_field(body, "pushkey", &bad, err);
    if (!bad) j->app_name = str_field(body, "app_display_name", &bad, err);
    if (!bad) j->dev_name = str_field(body, "device_display_name", &bad, err);
    if (!bad) j->tag = str_field(body, "profile_tag", &bad, err);
    if (!bad) j->lang = str_field(body, "lang", &bad, err);
    if (bad) return -1;
    if (strlen(j->pushkey) > MAX_PUSHKEY_BYTES)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'pushkey' is longer than 512 bytes");
    if (utf8_chars(j->app_id) > MAX_APP_ID_CHARS || !*j->app_id)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'app_id' must be 1 to 64 characters");
    const json_t *data = json_object_get(body, "data");
    if (!json_is_object(data))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'data' must be an object");
    const json_t *append = json_object_get(body, "append");
    if (append && !json_is_boolean(append))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'append' must be a boolean");
    j->append = json_is_true(append);
    if (push_json_has_nul(body))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "strings may not hold U+0000");
    return 0;
}

static int post_pusher_set(hs_req *r, json_t **out, hs_err *err) {
    const json_t *body = r->json;
    const json_t *kind = json_object_get(body, "kind");
    set_job j = {.user_id = r->user_id, .device_id = r->device_id};
    if (kind && json_is_null(kind)) {
        /* kind null deletes; only app_id and pushkey matter then. */
        bool bad = false;
        j.app_id = str_field(body, "app_id", &bad, err);
        if (!bad) j.pushkey = str_field(body, "pushkey", &bad, err);
        if (bad) return -1;
        if (!j.app_id || !j.pushkey)
            return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing parameters: %s",
                              !j.app_id && !j.pushkey ? "app_id, pushkey"
                              : !j.app_id            ? "app_id"
                                                     : "pushkey");
        db_conn *c = db_acquire(r->srv->db, err);
        if (!c) return -1;
        long n = delete_pusher(c, r->user_id, j.app_id, j.pushkey, err);
        db_release(r->srv->db, c);
        if (n < 0) return -1;
        *out = json_object();
        return 200;
    }
    if (check_missing(body, err) < 0) return -1;
    if (!json_is_string(kind))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'kind' must be a string or null");
    j.kind = json_string_value(kind);
    if (check_fields(body, &j, err) < 0) return -1;
    const json_t *data = json_object_get(body, "data");
    if (!strcmp(j.kind, "email")) {
        if (strcmp(j.app_id, "m.email") != 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM", "email pushers have app_id 'm.email'");
        /* The address must be one bound to the account, and none can be here. */
        return hs_err_set(err, 400, "M_THREEPID_NOT_FOUND", "Email not found");
    }
    if (strcmp(j.kind, "http") != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "unknown pusher kind '%.32s'", j.kind);
    if (check_url(data, err) < 0) return -1;
    j.data = json_dumps(data, JSON_COMPACT);
    int rc = db_txn(r->srv->db, set_txn, &j, err);
    free(j.data);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

void client_pushers_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/pushers", get_pushers, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/pushers/set", post_pusher_set, HS_AUTH | HS_R0);
}
