/* filters.c — POST /user/{userId}/filter, GET /user/{userId}/filter/{filterId},
 * and loading the filter a /sync names.
 *
 * Filter IDs are small decimal numbers per user (0, 1, …), as Synapse gives
 * them; they never start with '{', which is how an inline filter is told
 * apart. Uploading the same filter again returns the ID it already has, so
 * clients that upload their filter at every start don't pile up rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "filters.h"
#include "homeserver/core/json.h"
#include "jsonb.h"

static int check_owner(hs_req *r, const char *verb, hs_err *err) {
    if (strcmp(r->params[0], r->user_id) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Cannot %s filters for other users", verb);
    return 0;
}

/* The ID of an identical filter of the user, else a new one (max + 1). Two
 * uploads racing for the same new ID: the loser sees no row and tries again. */
static long long store_filter(db_conn *c, const char *user_id, const char *text, hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH existing AS (SELECT filter_id FROM user_filters WHERE user_id = $1"
        "   AND filter = $2::jsonb ORDER BY filter_id LIMIT 1),"
        " ins AS (INSERT INTO user_filters (user_id, filter_id, filter)"
        "   SELECT $1, coalesce((SELECT max(filter_id) + 1 FROM user_filters WHERE user_id = $1), 0),"
        "   $2::jsonb WHERE NOT EXISTS (SELECT 1 FROM existing)"
        "   ON CONFLICT DO NOTHING RETURNING filter_id)"
        " SELECT filter_id FROM existing UNION ALL SELECT filter_id FROM ins");
    for (int attempt = 0; attempt < 5; attempt++) {
        PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, text}, err);
        if (!r) return -1;
        long long id = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
        PQclear(r);
        if (id >= 0) return id;
    }
    return hs_err_set(err, 500, "M_UNKNOWN", "could not allocate a filter ID");
}

static int post_filter(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, "create", err) < 0 || client_filter_check(r->json, err) < 0) return -1;
    char *text = client_jsonb_dump(r->json, err);
    if (!text) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    long long id = c ? store_filter(c, r->user_id, text, err) : -1;
    db_release(r->srv->db, c);
    free(text);
    if (id < 0) return -1;
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", id);
    *out = json_pack("{s:s}", "filter_id", buf);
    return 200;
}

static bool all_digits(const char *s) {
    if (!*s || strlen(s) > 18) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* The stored filter (new reference), or NULL: not_found tells an unknown ID
 * from a database error. */
static json_t *fetch_filter(db_conn *c, const char *user_id, const char *id, bool *not_found,
                            hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT filter::text FROM user_filters WHERE user_id = $1 AND filter_id = $2");
    *not_found = false;
    if (!all_digits(id)) return *not_found = true, NULL;
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, id}, err);
    if (!r) return NULL;
    json_t *v = PQntuples(r) ? client_jsonb_load(PQgetvalue(r, 0, 0)) : NULL;
    *not_found = PQntuples(r) == 0;
    PQclear(r);
    return v;
}

static int get_filter(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, "get", err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    bool not_found;
    *out = fetch_filter(c, r->user_id, r->params[1], &not_found, err);
    db_release(r->srv->db, c);
    if (not_found) return hs_err_set(err, 404, "M_NOT_FOUND", "No such filter");
    return *out ? 200 : -1;
}

client_filter *client_filter_load(db_conn *c, const char *user_id, const char *param,
                                  hs_err *err) {
    json_t *j;
    if (!param || !*param) {
        j = json_object();
    } else if (param[0] == '{') {
        j = hs_json_parse(param, strlen(param), err); /* M_NOT_JSON / M_BAD_JSON */
        if (!j) return NULL;
    } else {
        bool not_found;
        j = fetch_filter(c, user_id, param, &not_found, err);
        if (not_found) hs_err_set(err, 400, "M_INVALID_PARAM", "No such filter %s", param);
        if (!j) return NULL;
    }
    client_filter *f = client_filter_parse(j, err);
    json_decref(j);
    return f;
}

void client_filters_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/user/{userId}/filter", post_filter, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/user/{userId}/filter/{filterId}", get_filter,
             HS_AUTH | HS_R0);
}
