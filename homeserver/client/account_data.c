/* account_data.c — GET/PUT /user/{userId}[/rooms/{roomId}]/account_data/{type}
 * and the account data stream /sync reads.
 *
 * A user sees and sets only their own account data. Room account data does
 * not need the room to exist (as in Synapse); only the room ID's form is
 * checked. */
#include "account_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/db/streams.h"
#include "jsonb.h"
#include "notifier.h"
#include "push_rules.h"
#include "push_store.h"

#define MAX_TYPE_BYTES 255

typedef struct write_job {
    db_stmt *st;
    int n;
    const char *p[8];
    char pos_text[24];
    long long pos;
    long changed;
} write_job;

static int write_txn(db_conn *c, void *arg, hs_err *err) {
    write_job *j = arg;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_ACCOUNT_DATA, err)) < 0) return -1;
    snprintf(j->pos_text, sizeof j->pos_text, "%lld", j->pos);
    j->p[0] = j->pos_text;
    j->changed = db_exec(c, j->st, j->n + 1, j->p, err);
    return j->changed < 0 ? -1 : 0;
}

long client_account_data_write(hs_server *srv, const char *user_id, db_stmt *st, int n,
                               const char *const *params, hs_err *err) {
    write_job j = {.st = st, .n = n};
    if (n < 0 || n > 7) return hs_err_set(err, 500, "M_UNKNOWN", "too many parameters");
    for (int i = 0; i < n; i++) j.p[i + 1] = params[i];
    int rc = db_txn(srv->db, write_txn, &j, err);
    if (j.pos > 0) db_stream_done(DB_STREAM_ACCOUNT_DATA, j.pos);
    if (rc < 0) return -1;
    if (j.changed > 0) hs_notify_users((const char *const[]){user_id}, 1);
    return j.changed;
}

int client_account_data_put(hs_server *srv, const char *user_id, const char *room_id,
                            const char *type, const json_t *content, hs_err *err) {
    static db_stmt put = DB_STMT(
        "INSERT INTO account_data (stream_id, user_id, room_id, type, content)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (user_id, room_id, type)"
        " DO UPDATE SET content = EXCLUDED.content, stream_id = EXCLUDED.stream_id");
    if (!json_is_object(content))
        return hs_err_set(err, 400, "M_BAD_JSON", "account data must be a JSON object");
    char *text = client_jsonb_dump(content, err);
    if (!text) return -1;
    const char *p[] = {user_id, room_id ? room_id : "", type, text};
    long n = client_account_data_write(srv, user_id, &put, 4, p, err);
    free(text);
    return n < 0 ? -1 : 0;
}

static db_stmt get_one = DB_STMT(
    "SELECT content::text FROM account_data WHERE user_id = $1 AND room_id = $2 AND type = $3");

bool client_ignored_event(const json_t *ignored_users, const json_t *ev) {
    const char *sender = json_string_value(json_object_get(ev, "sender"));
    return sender && !json_object_get(ev, "state_key") &&
           json_object_get(ignored_users, sender) != NULL;
}

void client_account_data_prefetch(db_conn *c, const char *user_id, const char *room_id,
                                  const char *type) {
    hs_err ignored = {0};
    db_prefetch(c, &get_one, 3, (const char *[]){user_id, room_id ? room_id : "", type}, 0,
                &ignored);
}

json_t *client_account_data_get(db_conn *c, const char *user_id, const char *room_id,
                                const char *type, hs_err *err) {
    PGresult *r = db_run(c, &get_one, 3, (const char *[]){user_id, room_id ? room_id : "", type},
                         err);
    if (!r) return NULL;
    json_t *v = PQntuples(r) ? client_jsonb_load(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    if (!v)
        hs_err_set(err, 404, "M_NOT_FOUND", "%s not found",
                   room_id && *room_id ? "Room account data" : "Account data");
    return v;
}

static void append_event(json_t *arr, const char *type, json_t *content) {
    json_array_append_new(arr, json_pack("{s:s, s:o}", "type", type, "content", content));
}

int client_account_data_sync(db_conn *c, const char *user_id, long long from, long long to,
                             json_t *global, json_t *rooms, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id, type, content::text FROM account_data WHERE user_id = $1"
        " AND stream_id > $2 AND stream_id <= $3 ORDER BY stream_id");
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    PGresult *r = db_run(c, &q, 3, (const char *[]){user_id, f, t}, err);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *room = PQgetvalue(r, i, 0);
        json_t *content = client_jsonb_load(PQgetvalue(r, i, 2));
        if (!content) continue;
        json_t *arr = *room ? rooms : global;
        if (arr && *room) {
            json_t *list = json_object_get(rooms, room);
            if (!list) json_object_set_new(rooms, room, list = json_array());
            arr = list;
        }
        if (arr) append_event(arr, PQgetvalue(r, i, 1), content);
        else json_decref(content);
    }
    PQclear(r);
    return 0;
}

/* ---- the endpoints ---- */

static int check_owner(hs_req *r, const char *verb, hs_err *err) {
    if (strcmp(r->params[0], r->user_id) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Cannot %s account data for other users.", verb);
    return 0;
}

/* Room IDs are "!opaque:server", or "!opaque" from room version 12 on. */
static int check_room_id(const char *room_id, hs_err *err) {
    if (room_id[0] != '!' || !room_id[1] || strlen(room_id) > 255)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "%s is not a valid room ID", room_id);
    return 0;
}

/* The spec's 405 for types the server manages. */
static int check_settable(const char *type, hs_err *err) {
    if (!strcmp(type, "m.fully_read"))
        return hs_err_set(err, 405, "M_BAD_JSON",
                          "Cannot set m.fully_read through this API. Use /rooms/{roomId}/read_markers");
    if (!strcmp(type, "m.push_rules"))
        return hs_err_set(err, 405, "M_BAD_JSON", "Cannot set m.push_rules through this API. Use /pushrules");
    if (strlen(type) > MAX_TYPE_BYTES)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "the type is longer than %d bytes", MAX_TYPE_BYTES);
    return 0;
}

/* m.push_rules is the server's: the rule set /pushrules manages, as in
 * Synapse (which answers {} for the room kind it doesn't support). */
static json_t *push_rules_content(db_conn *c, const char *user_id, const char *room_id,
                                  hs_err *err) {
    if (room_id) return json_object();
    json_t *rules = NULL, *changes = NULL;
    if (push_store_load(c, user_id, &rules, &changes, err) < 0) return NULL;
    json_t *out = json_pack("{s:o}", "global", push_rules_ruleset(user_id, rules, changes));
    json_decref(rules);
    json_decref(changes);
    return out;
}

static int get_data(hs_req *r, const char *room_id, json_t **out, hs_err *err) {
    const char *type = r->params[room_id ? 2 : 1];
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    *out = !strcmp(type, "m.push_rules") ? push_rules_content(c, r->user_id, room_id, err)
                                         : client_account_data_get(c, r->user_id, room_id, type, err);
    db_release(r->srv->db, c);
    return *out ? 200 : -1;
}

static int put_data(hs_req *r, const char *room_id, json_t **out, hs_err *err) {
    if (client_account_data_put(r->srv, r->user_id, room_id, r->params[room_id ? 2 : 1], r->json,
                                err) < 0)
        return -1;
    *out = json_object();
    return 200;
}

static int get_global(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, "get", err) < 0) return -1;
    return get_data(r, NULL, out, err);
}

static int put_global(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, "add", err) < 0 || check_settable(r->params[1], err) < 0) return -1;
    return put_data(r, NULL, out, err);
}

static int get_room(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, "get", err) < 0 || check_room_id(r->params[1], err) < 0) return -1;
    return get_data(r, r->params[1], out, err);
}

static int put_room(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, "add", err) < 0 || check_room_id(r->params[1], err) < 0 ||
        check_settable(r->params[2], err) < 0)
        return -1;
    return put_data(r, r->params[1], out, err);
}

void client_account_data_routes(hs_router *rt) {
    const char *g = "/_matrix/client/v3/user/{userId}/account_data/{type}";
    const char *rm = "/_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}";
    hs_route(rt, "GET", g, get_global, HS_AUTH | HS_R0);
    hs_route(rt, "PUT", g, put_global, HS_AUTH | HS_R0);
    hs_route(rt, "GET", rm, get_room, HS_AUTH | HS_R0);
    hs_route(rt, "PUT", rm, put_room, HS_AUTH | HS_R0);
}
