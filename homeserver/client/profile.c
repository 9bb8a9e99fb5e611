/* profile.c — GET /profile/{userId} and GET/PUT/DELETE
 * /profile/{userId}/{keyName}: display name, avatar and v1.16's other
 * fields (m.tz, namespaced custom keys), for users of this server.
 *
 * A new display name or avatar is carried into every room the user is
 * joined to by a fresh m.room.member join event (spec: "Events on Change of
 * Profile Information"), sent after the profile change commits. */
#include "profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "fed_outbound.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "room_send.h"
#include "text.h"

int client_profile_init(db_conn *c, const char *user_id, const char *displayname, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO profiles (user_id, displayname) VALUES ($1, $2) ON CONFLICT DO NOTHING");
    return db_exec(c, &ins, 2, (const char *[]){user_id, displayname}, err) < 0 ? -1 : 0;
}

int client_profile_get(db_conn *c, const char *user_id, char **displayname, char **avatar_url,
                       hs_err *err) {
    static db_stmt q = DB_STMT("SELECT displayname, avatar_url FROM profiles WHERE user_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    bool row = PQntuples(r) == 1;
    if (displayname) *displayname = row && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (avatar_url) *avatar_url = row && !PQgetisnull(r, 0, 1) ? strdup(PQgetvalue(r, 0, 1)) : NULL;
    PQclear(r);
    return 0;
}

int client_profile_fill_member(db_conn *c, const char *user_id, json_t *content, hs_err *err) {
    char *name, *avatar;
    if (client_profile_get(c, user_id, &name, &avatar, err) < 0) return -1;
    if (name) json_object_set_new(content, "displayname", json_string(name));
    if (avatar) json_object_set_new(content, "avatar_url", json_string(avatar));
    free(name), free(avatar);
    return 0;
}

int client_profile_erase(db_conn *c, const char *user_id, hs_err *err) {
    static db_stmt up = DB_STMT(
        "UPDATE profiles SET displayname = NULL, avatar_url = NULL, fields = '{}' WHERE user_id = $1");
    return db_exec(c, &up, 1, (const char *[]){user_id}, err) < 0 ? -1 : 0;
}

/* ---- reading ---- */

static bool is_local(hs_req *r, const char *user_id) {
    const char *colon = user_id[0] == '@' ? strchr(user_id, ':') : NULL;
    return colon && !strcmp(colon + 1, r->srv->cfg->server_name);
}

json_t *client_profile_load(db_conn *c, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT p.displayname, p.avatar_url, p.fields::text FROM users u"
        " LEFT JOIN profiles p USING (user_id) WHERE u.user_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return NULL;
    json_t *p = NULL;
    if (PQntuples(r) == 0) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Profile was not found");
    } else {
        p = PQgetisnull(r, 0, 2) ? NULL : json_loads(PQgetvalue(r, 0, 2), 0, NULL);
        if (!json_is_object(p)) json_decref(p), p = json_object();
        if (!PQgetisnull(r, 0, 0)) json_object_set_new(p, "displayname", json_string(PQgetvalue(r, 0, 0)));
        if (!PQgetisnull(r, 0, 1)) json_object_set_new(p, "avatar_url", json_string(PQgetvalue(r, 0, 1)));
    }
    PQclear(r);
    return p;
}

static int check_target(hs_req *r, const char *user_id, hs_err *err) {
    (void)r;
    if (user_id[0] != '@' || !strchr(user_id, ':'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user id");
    return 0;
}

static int get_profile(hs_req *r, json_t **out, hs_err *err) {
    if (check_target(r, r->params[0], err) < 0) return -1;
    if (!is_local(r, r->params[0])) /* their server answers (federation's profile query) */
        return client_fed_profile(r->srv, r->params[0], NULL, out, err) < 0 ? -1 : 200;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *p = client_profile_load(c, r->params[0], err);
    db_release(r->srv->db, c);
    if (!p) return -1;
    if (json_object_size(p) == 0) /* Synapse: nothing set is "not found" */
        return json_decref(p), hs_err_set(err, 404, "M_NOT_FOUND", "Profile was not found");
    *out = p;
    return 200;
}

/* The spec's keyName pattern:
 *   ^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$ */
int client_profile_key_check(const char *k, hs_err *err) {
    if (strlen(k) > CLIENT_PROFILE_KEY_MAX)
        return hs_err_set(err, 400, "M_KEY_TOO_LARGE", "Profile key is longer than %d bytes",
                          CLIENT_PROFILE_KEY_MAX);
    if (!strcmp(k, "avatar_url") || !strcmp(k, "displayname")) return 0;
    int segments = 0;
    for (const char *p = k; *p;) {
        if (*p < 'a' || *p > 'z') return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid profile key");
        p += strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        segments++;
        if (*p == '.' && p[1]) p++;
        else if (*p) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid profile key");
    }
    return segments >= 2 ? 0 : hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid profile key");
}

static int get_field(hs_req *r, json_t **out, hs_err *err) {
    const char *key = r->params[1];
    if (check_target(r, r->params[0], err) < 0 || client_profile_key_check(key, err) < 0) return -1;
    if (!is_local(r, r->params[0])) {
        json_t *p = NULL;
        if (client_fed_profile(r->srv, r->params[0], key, &p, err) < 0) return -1;
        if (json_object_get(p, key)) return *out = p, 200;
        json_decref(p);
        return hs_err_set(err, 404, "M_NOT_FOUND", "The user has no '%s'", key);
    }
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *p = client_profile_load(c, r->params[0], err);
    db_release(r->srv->db, c);
    if (!p) return -1;
    json_t *v = json_object_get(p, key);
    int rc = 200;
    if (!v) rc = hs_err_set(err, 404, "M_NOT_FOUND", "The user has no '%s'", key);
    else *out = json_pack("{s:O}", key, v);
    json_decref(p);
    return rc;
}

/* ---- writing ---- */

/* The value to store for key (new ref; json null: unset), or NULL with 400. */
static json_t *checked_value(const char *key, const json_t *v, hs_err *err) {
    bool name = !strcmp(key, "displayname"), avatar = !strcmp(key, "avatar_url");
    if (!name && !avatar && strcmp(key, "m.tz")) return json_incref((json_t *)v); /* custom: any */
    if (!json_is_string(v))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be a string", key), NULL;
    const char *s = json_string_value(v);
    size_t max = name ? CLIENT_DISPLAYNAME_MAX : avatar ? CLIENT_AVATAR_URL_MAX : 255;
    if (client_utf8_chars(s) > max)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is too long (max %zu)", key, max), NULL;
    /* Any string is an avatar_url, as Synapse takes it (Complement sets
     * "LemurLover"): clients fetch mxc:// ones and pass over the rest. */
    if (name) { /* Synapse trims, and treats "" as no name */
        size_t b = strspn(s, " \t\n\r"), e = strlen(s);
        while (e > b && strchr(" \t\n\r", s[e - 1])) e--;
        return e > b ? json_stringn(s + b, e - b) : json_null();
    }
    return *s || !avatar ? json_incref((json_t *)v) : json_null();
}

typedef struct put_job {
    const char *user_id, *key;
    json_t *value;          /* NULL: delete the key */
    bool propagate;         /* display name or avatar changed */
} put_job;

static int put_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt ensure = DB_STMT(
        "INSERT INTO profiles (user_id) VALUES ($1) ON CONFLICT DO NOTHING");
    static db_stmt set_name = DB_STMT("UPDATE profiles SET displayname = $2 WHERE user_id = $1");
    static db_stmt set_avatar = DB_STMT("UPDATE profiles SET avatar_url = $2 WHERE user_id = $1");
    static db_stmt set_field = DB_STMT(
        "UPDATE profiles SET fields = CASE WHEN $3::jsonb IS NULL THEN fields - $2"
        " ELSE jsonb_set(fields, ARRAY[$2], $3::jsonb) END WHERE user_id = $1");
    put_job *j = arg;
    if (db_exec(c, &ensure, 1, (const char *[]){j->user_id}, err) < 0) return -1;
    json_t *p = client_profile_load(c, j->user_id, err);
    if (!p) return -1;
    const json_t *old = json_object_get(p, j->key);
    bool classic = !strcmp(j->key, "displayname") || !strcmp(j->key, "avatar_url");
    json_t *v = classic && json_is_null(j->value) ? NULL : j->value;
    j->propagate = classic && !(old ? v && json_equal(old, v) : !v);
    if (v) json_object_set(p, j->key, v);
    else json_object_del(p, j->key);
    size_t len = 0;
    char *whole = hs_json_canonical_ex(p, NULL, HS_JSON_CANON_ANY_INT, &len, err);
    json_decref(p);
    if (!whole) return -1;
    free(whole);
    if (len > CLIENT_PROFILE_MAX_BYTES)
        return hs_err_set(err, 400, "M_PROFILE_TOO_LARGE", "The profile would exceed 64 KiB");
    char *enc = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    const char *sv = classic ? json_string_value(v) : enc;
    db_stmt *st = !strcmp(j->key, "displayname") ? &set_name
                  : !strcmp(j->key, "avatar_url") ? &set_avatar
                                                   : &set_field;
    long n = db_exec(c, st, st == &set_field ? 3 : 2,
                     st == &set_field ? (const char *[]){j->user_id, j->key, sv}
                                      : (const char *[]){j->user_id, sv},
                     err);
    free(enc);
    return n < 0 ? -1 : 0;
}

/* Send a join with the new profile into every room the user is joined to.
 * Best effort: a room that refuses (or fails) is logged and skipped. */
void client_profile_propagate(hs_server *srv, const char *user_id) {
    static db_stmt rooms = DB_STMT(
        "SELECT room_id FROM current_state WHERE type = 'm.room.member' AND state_key = $1"
        " AND membership = 'join' ORDER BY room_id");
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    PGresult *r = c ? db_run(c, &rooms, 1, (const char *[]){user_id}, &err) : NULL;
    json_t *content = json_pack("{s:s}", "membership", "join");
    if (r) client_profile_fill_member(c, user_id, content, &err);
    db_release(srv->db, c);
    for (int i = 0; r && i < PQntuples(r); i++) {
        hs_err e = {0};
        room_event *ev = client_room_send_state(srv, PQgetvalue(r, i, 0), user_id, "m.room.member",
                                                user_id, content, &e);
        if (!ev) hs_warn("profile update of %s in %s: %s", user_id, PQgetvalue(r, i, 0), e.msg);
        room_event_free(ev);
    }
    if (!r && err.status) hs_warn("profile update of %s: %s", user_id, err.msg);
    PQclear(r);
    json_decref(content);
}

static int change_field(hs_req *r, json_t *value, json_t **out, hs_err *err) {
    const char *user_id = r->params[0], *key = r->params[1];
    put_job j = {.user_id = user_id, .key = key, .value = value};
    if (db_txn(r->srv->db, put_txn, &j, err) < 0) return -1;
    if (j.propagate) client_profile_propagate(r->srv, user_id);
    *out = json_object();
    return 200;
}

/* The checks PUT and DELETE share: a valid key, one's own profile (or a
 * server admin's doing), guests only their display name. */
static int check_write(hs_req *r, hs_err *err) {
    const char *user_id = r->params[0], *key = r->params[1];
    if (client_profile_key_check(key, err) < 0) return -1;
    if (strcmp(user_id, r->user_id) && !(r->is_admin && is_local(r, user_id)))
        return hs_err_set(err, 403, "M_FORBIDDEN", "Cannot change another user's profile");
    if (r->is_guest && strcmp(key, "displayname"))
        return hs_err_set(err, 403, "M_GUEST_ACCESS_FORBIDDEN", "Guests may only set a display name");
    return 0;
}

static int put_field(hs_req *r, json_t **out, hs_err *err) {
    if (check_write(r, err) < 0) return -1;
    const json_t *v = json_object_get(r->json, r->params[1]);
    if (!v) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing key '%s'", r->params[1]);
    json_t *value = checked_value(r->params[1], v, err);
    if (!value) return -1;
    int rc = change_field(r, value, out, err);
    json_decref(value);
    return rc;
}

static int delete_field(hs_req *r, json_t **out, hs_err *err) {
    if (check_write(r, err) < 0) return -1;
    return change_field(r, NULL, out, err);
}

void client_profile_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/profile/{userId}", get_profile, HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/profile/{userId}/{keyName}", get_field, HS_R0);
    hs_route(rt, "PUT", "/_matrix/client/v3/profile/{userId}/{keyName}", put_field,
             HS_AUTH | HS_R0 | HS_GUEST | HS_REFUSE_SUSPENDED);
    hs_route(rt, "DELETE", "/_matrix/client/v3/profile/{userId}/{keyName}", delete_field,
             HS_AUTH | HS_R0 | HS_GUEST | HS_REFUSE_SUSPENDED);
}
