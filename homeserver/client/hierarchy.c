/* hierarchy.c — GET /_matrix/client/v1/rooms/{roomId}/hierarchy: a space's
 * tree, depth first, a page at a time.
 *
 * Synapse's walk: a stack of rooms still to visit (each with its depth and
 * the child event's via servers) and the set of rooms done; between pages
 * both wait in hierarchy_sessions (sql/012) under a random token for five
 * minutes. A room is shown if the user may see its summary (room_summary.c);
 * only the children of shown spaces are visited. Children are ordered as the
 * spec orders m.space.child: valid "order" first (lexicographically), then
 * origin_server_ts, then room ID.
 *
 * Rooms this server is not in would be summarised over federation
 * (/_matrix/federation/v1/hierarchy through the via servers): until that
 * client exists they are left out, and a root we are not in is 403. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels_internal.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/clock.h"
#include "rooms/server_acl.h"

#define MAX_ROOMS 50                    /* per page, Synapse's cap */
#define SESSION_MS (5 * 60 * 1000LL)    /* how long a next_batch token lives */
#define MAX_ORDER_LEN 50

typedef struct walk {
    hs_req *r;
    db_conn *c;
    bool suggested_only;
    int max_depth;       /* -1: no limit */
    json_t *queue;       /* [[room_id, depth, [via…]], …], next last */
    json_t *processed;   /* {room_id: true} */
    json_t *rooms;       /* the page */
} walk;

/* A query parameter that is a decimal integer >= min (absent: def). */
static int int_param(hs_req *r, const char *name, long min, long def, long *out, hs_err *err) {
    const char *s = hs_req_query(r, name);
    if (!s) return *out = def, 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > 1000000)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be an integer of at least %ld",
                          name, min);
    return *out = v, 0;
}

static int bool_param(hs_req *r, const char *name, bool *out, hs_err *err) {
    const char *s = hs_req_query(r, name);
    *out = false;
    if (!s || !strcmp(s, "false")) return 0;
    if (!strcmp(s, "true")) return *out = true, 0;
    return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' must be true or false", name);
}

static bool valid_order(const json_t *o) {
    const char *s = json_string_value(o);
    if (!s || strlen(s) > MAX_ORDER_LEN) return false;
    for (const char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e) return false;
    return true;
}

static bool valid_via(const json_t *via) {
    size_t i;
    const json_t *v;
    if (!json_is_array(via) || !json_array_size(via)) return false;
    json_array_foreach(via, i, v) if (!json_is_string(v)) return false;
    return true;
}

static int child_cmp(const void *a, const void *b) {
    const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
    const json_t *ox = json_object_get(json_object_get(x, "content"), "order");
    const json_t *oy = json_object_get(json_object_get(y, "content"), "order");
    bool vx = valid_order(ox), vy = valid_order(oy);
    if (vx != vy) return vx ? -1 : 1;
    int c = vx ? strcmp(json_string_value(ox), json_string_value(oy)) : 0;
    if (c) return c;
    json_int_t tx = json_integer_value(json_object_get(x, "origin_server_ts"));
    json_int_t ty = json_integer_value(json_object_get(y, "origin_server_ts"));
    if (tx != ty) return tx < ty ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "state_key")),
                  json_string_value(json_object_get(y, "state_key")));
}

/* A space's m.space.child events as stripped state with origin_server_ts,
 * ordered; redacted ones (no valid via) left out. */
static json_t *children_of(db_conn *c, const char *room_id, bool suggested_only, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT convert_from(e.json, 'UTF8') FROM current_state cs"
        " JOIN events e ON e.event_id = cs.event_id"
        " WHERE cs.room_id = $1 AND cs.type = 'm.space.child'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    json_t **kids = calloc((size_t)PQntuples(r) + 1, sizeof *kids);
    size_t n = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *ev = json_loads(PQgetvalue(r, i, 0), 0, NULL);
        const json_t *content = json_object_get(ev, "content");
        bool keep = ev && valid_via(json_object_get(content, "via")) &&
                    json_is_string(json_object_get(ev, "state_key")) &&
                    (!suggested_only || json_is_true(json_object_get(content, "suggested")));
        if (keep)
            kids[n++] = json_pack("{s:O, s:O, s:O, s:O, s:O}", "type", json_object_get(ev, "type"),
                                  "state_key", json_object_get(ev, "state_key"), "content", content,
                                  "sender", json_object_get(ev, "sender"), "origin_server_ts",
                                  json_object_get(ev, "origin_server_ts"));
        json_decref(ev);
    }
    PQclear(r);
    qsort(kids, n, sizeof *kids, child_cmp);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(out, kids[i]);
    free(kids);
    return out;
}

/* The entry of a local room for this user, or NULL (not shown) with err
 * untouched. */
static json_t *visit_local(walk *w, const char *room_id, json_t **children, hs_err *err) {
    *children = NULL;
    int ok = channel_accessible(w->c, room_id, w->r->user_id, err);
    if (ok <= 0) return NULL;
    json_t *entry = channel_summary(w->c, room_id, err);
    if (!entry) return NULL;
    const char *type = json_string_value(json_object_get(entry, "room_type"));
    *children = type && !strcmp(type, "m.space") ? children_of(w->c, room_id, w->suggested_only, err)
                                                 : json_array();
    if (!*children) return json_decref(entry), NULL;
    json_object_set(entry, "children_state", *children);
    return entry;
}

/* A room we are not in, through up to three of its via servers' federation
 * /hierarchy: its entry (children_state included) or NULL; what it says of
 * its children goes to *known (room ID -> summary) and *inaccessible. */
static json_t *visit_remote(walk *w, const char *room_id, const json_t *via, json_t *known,
                            json_t *inaccessible) {
    json_t *res = channel_fed_hierarchy(w->r->srv, room_id, via, w->suggested_only);
    if (!res) return NULL;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(res, "children"), i, c)
        if (json_is_string(json_object_get(c, "room_id")))
            json_object_set(known, json_string_value(json_object_get(c, "room_id")), c);
    json_array_foreach(json_object_get(res, "inaccessible_children"), i, c)
        if (json_is_string(c)) json_object_set_new(inaccessible, json_string_value(c), json_true());
    json_t *room = json_deep_copy(json_object_get(res, "room"));
    json_decref(res);
    json_object_set_new(room, "room_id", json_string(room_id));
    if (!json_is_array(json_object_get(room, "children_state")))
        json_object_set_new(room, "children_state", json_array());
    return room;
}

/* One queued room: its entry for the page (or NULL), and its children to
 * queue with what is already known of them. */
static json_t *visit(walk *w, const json_t *item, json_t **kids, json_t *known, json_t *inaccessible,
                     hs_err *err) {
    const char *room_id = json_string_value(json_array_get(item, 0));
    int depth = (int)json_integer_value(json_array_get(item, 1));
    const json_t *hint = json_array_get(item, 3);
    int joined = channel_host_joined(w->c, room_id, w->r->srv->cfg->server_name, err);
    if (joined < 0) return NULL;
    if (joined) return visit_local(w, room_id, kids, err);
    json_t *entry = NULL;
    /* What the parent's server told us will do for a room that is not a
     * space, or whose children are beyond max_depth. */
    const char *type = json_string_value(json_object_get(hint, "room_type"));
    if (json_is_object(hint) && ((!type || strcmp(type, "m.space")) ||
                                 (w->max_depth >= 0 && depth >= w->max_depth))) {
        entry = json_deep_copy(hint);
        json_object_set_new(entry, "children_state", json_array());
    } else {
        entry = visit_remote(w, room_id, json_array_get(item, 2), known, inaccessible);
    }
    if (entry && channel_remote_accessible(w->c, room_id, entry, w->r->user_id) <= 0)
        json_decref(entry), entry = NULL;
    *kids = entry ? json_incref(json_object_get(entry, "children_state")) : NULL;
    return entry;
}

static int walk_page(walk *w, long limit, hs_err *err) {
    while (json_array_size(w->queue) && (long)json_array_size(w->rooms) < limit) {
        size_t last = json_array_size(w->queue) - 1;
        json_t *item = json_incref(json_array_get(w->queue, last));
        json_array_remove(w->queue, last);
        const char *room_id = json_string_value(json_array_get(item, 0));
        int depth = (int)json_integer_value(json_array_get(item, 1));
        json_t *kids = NULL, *entry = NULL, *known = json_object(), *inaccessible = json_object();
        if (room_id && !json_object_get(w->processed, room_id)) {
            err->status = 0;
            entry = visit(w, item, &kids, known, inaccessible, err);
            if (!entry && err->status >= 500) {
                json_decref(item), json_decref(known), json_decref(inaccessible);
                return -1;
            }
            json_object_set_new(w->processed, room_id, json_true());
        }
        if (entry) {
            json_array_append_new(w->rooms, entry);
            if (w->max_depth < 0 || depth < w->max_depth)
                for (size_t i = json_array_size(kids); i-- > 0;) {
                    const json_t *k = json_array_get(kids, i);
                    const char *id = json_string_value(json_object_get(k, "state_key"));
                    const json_t *via = json_object_get(json_object_get(k, "content"), "via");
                    if (!id || !valid_via(via) || json_object_get(inaccessible, id)) continue;
                    json_t *hint = json_object_get(known, id);
                    json_array_append_new(w->queue, json_pack("[s, i, O, O]", id, depth + 1, via,
                                                              hint ? hint : json_null()));
                }
        }
        json_decref(kids);
        json_decref(item);
        json_decref(known);
        json_decref(inaccessible);
    }
    return 0;
}

static int load_session(walk *w, const char *token, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT queue::text, processed::text FROM hierarchy_sessions WHERE token = $1"
        " AND user_id = $2 AND room_id = $3 AND suggested_only = $4::bool AND max_depth = $5::int"
        " AND created_ts > $6::bigint");
    char depth[16], since[24];
    snprintf(depth, sizeof depth, "%d", w->max_depth);
    snprintf(since, sizeof since, "%lld", hs_now_ms() - SESSION_MS);
    const char *p[] = {token, w->r->user_id, w->r->params[0], w->suggested_only ? "t" : "f",
                       depth, since};
    PGresult *r = db_run(w->c, &q, 6, p, err);
    if (!r) return -1;
    int rc = 0;
    if (!PQntuples(r)) {
        rc = hs_err_set(err, 400, "M_INVALID_PARAM",
                        "Unknown pagination token (or suggested_only and max_depth changed)");
    } else {
        json_t *queue = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        json_t *done = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
        size_t i;
        json_t *id;
        json_array_foreach(done, i, id)
            if (json_is_string(id)) json_object_set_new(w->processed, json_string_value(id), json_true());
        json_array_extend(w->queue, queue);
        json_decref(queue);
        json_decref(done);
    }
    PQclear(r);
    return rc;
}

/* Store the rest of the walk; the token (malloc'd) or NULL with err. */
static char *save_session(walk *w, hs_err *err) {
    static db_stmt gc = DB_STMT("DELETE FROM hierarchy_sessions WHERE created_ts < $1::bigint");
    static db_stmt ins = DB_STMT(
        "INSERT INTO hierarchy_sessions (token, user_id, room_id, suggested_only, max_depth,"
        " queue, processed, created_ts) VALUES ($1, $2, $3, $4::bool, $5::int, $6::jsonb,"
        " $7::jsonb, $8::bigint)");
    unsigned char raw[18];
    randombytes_buf(raw, sizeof raw);
    char *token = hs_b64_encode(raw, sizeof raw, true);
    json_t *done = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(w->processed, k, v) json_array_append_new(done, json_string(k));
    char *queue = json_dumps(w->queue, JSON_COMPACT), *processed = json_dumps(done, JSON_COMPACT);
    char depth[16], now[24], old[24];
    long long t = hs_now_ms();
    snprintf(depth, sizeof depth, "%d", w->max_depth);
    snprintf(now, sizeof now, "%lld", t);
    snprintf(old, sizeof old, "%lld", t - SESSION_MS);
    const char *p[] = {token, w->r->user_id, w->r->params[0], w->suggested_only ? "t" : "f",
                       depth, queue, processed, now};
    if (db_exec(w->c, &gc, 1, (const char *[]){old}, err) < 0 || db_exec(w->c, &ins, 8, p, err) < 0) {
        free(token);
        token = NULL;
    }
    free(queue);
    free(processed);
    json_decref(done);
    return token;
}

/* The root must be a room we are in and the user may see. */
static int check_root(walk *w, hs_err *err) {
    int joined = channel_host_joined(w->c, w->r->params[0], w->r->srv->cfg->server_name, err);
    int ok = joined > 0 ? channel_accessible(w->c, w->r->params[0], w->r->user_id, err) : joined;
    if (ok < 0) return -1;
    return ok ? 0
              : hs_err_set(err, 403, "M_FORBIDDEN", "User %s not in room %s, and room previews are "
                                                   "disabled", w->r->user_id, w->r->params[0]);
}

static int run_walk(walk *w, long limit, const char *from, json_t **out, hs_err *err) {
    if (check_root(w, err) < 0) return -1;
    if (from) {
        if (load_session(w, from, err) < 0) return -1;
    } else {
        json_array_append_new(w->queue, json_pack("[s, i, [], n]", w->r->params[0], 0));
    }
    if (walk_page(w, limit, err) < 0) return -1;
    json_t *res = json_pack("{s:O}", "rooms", w->rooms);
    if (json_array_size(w->queue)) {
        char *token = save_session(w, err);
        if (!token) return json_decref(res), -1;
        json_object_set_new(res, "next_batch", json_string(token));
        free(token);
    }
    *out = res;
    return 200;
}

static int get_hierarchy(hs_req *r, json_t **out, hs_err *err) {
    long limit, depth;
    walk w = {.r = r};
    if (bool_param(r, "suggested_only", &w.suggested_only, err) < 0 ||
        int_param(r, "limit", 1, MAX_ROOMS, &limit, err) < 0 ||
        int_param(r, "max_depth", 0, -1, &depth, err) < 0)
        return -1;
    if (limit > MAX_ROOMS) limit = MAX_ROOMS;
    w.max_depth = (int)depth;
    if (!(w.c = db_acquire(r->srv->db, err))) return -1;
    w.queue = json_array();
    w.processed = json_object();
    w.rooms = json_array();
    int rc = run_walk(&w, limit, hs_req_query(r, "from"), out, err);
    json_decref(w.queue);
    json_decref(w.processed);
    json_decref(w.rooms);
    db_release(r->srv->db, w.c);
    return rc;
}

/* ---- federation: GET /_matrix/federation/v1/hierarchy/{roomId} --------------- */

/* The space and its children we are in, as far as the asking server may see
 * them; no recursion (the asking server walks on). A space whose server ACL
 * denies the asking server is 403 M_FORBIDDEN, as every room endpoint of
 * federation answers such a server; a child that denies it is inaccessible. */
static int fed_summary(hs_req *r, db_conn *c, bool suggested, json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *origin = r->origin ? r->origin : "";
    int ok = channel_host_joined(c, room_id, r->srv->cfg->server_name, err);
    int acl = ok > 0 ? room_acl_allows(c, room_id, origin, err) : 1;
    if (ok > 0 && acl > 0) ok = channel_accessible_to_server(c, room_id, origin, err);
    if (ok < 0 || acl < 0) return -1;
    if (!acl)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                          origin, room_id);
    if (!ok) return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown room: %s", room_id);
    json_t *room = channel_summary(c, room_id, err);
    if (!room) return -1;
    const char *type = json_string_value(json_object_get(room, "room_type"));
    json_t *kids = type && !strcmp(type, "m.space") ? children_of(c, room_id, suggested, err) : json_array();
    if (!kids) return json_decref(room), -1;
    json_object_set(room, "children_state", kids);
    json_t *children = json_array(), *inaccessible = json_array();
    size_t i;
    json_t *k;
    int rc = 0;
    json_array_foreach(kids, i, k) {
        if (i >= MAX_ROOMS || rc < 0) break;
        const char *id = json_string_value(json_object_get(k, "state_key"));
        int here = channel_host_joined(c, id, r->srv->cfg->server_name, err);
        if (here <= 0) { rc = here; continue; } /* rooms we are not in: left out */
        int acc = room_acl_allows(c, id, origin, err); /* denied: inaccessible */
        if (acc > 0) acc = channel_accessible_to_server(c, id, origin, err);
        json_t *s = acc > 0 ? channel_summary(c, id, err) : NULL;
        if (acc < 0) rc = -1;
        else if (s) json_array_append_new(children, s);
        else json_array_append_new(inaccessible, json_string(id));
    }
    json_decref(kids);
    if (rc < 0) return json_decref(room), json_decref(children), json_decref(inaccessible), -1;
    *out = json_pack("{s:o, s:o, s:o}", "room", room, "children", children, "inaccessible_children",
                     inaccessible);
    return 200;
}

static int fed_get_hierarchy(hs_req *r, json_t **out, hs_err *err) {
    bool suggested;
    if (bool_param(r, "suggested_only", &suggested, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = fed_summary(r, c, suggested, out, err);
    db_release(r->srv->db, c);
    return rc;
}

void channel_hierarchy_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v1/rooms/{roomId}/hierarchy", get_hierarchy, HS_AUTH | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/federation/v1/hierarchy/{roomId}", fed_get_hierarchy, HS_FEDERATION);
}
