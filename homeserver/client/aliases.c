/* aliases.c — room aliases: /directory/room/{roomAlias} and /rooms/{roomId}/aliases.
 *
 * Only aliases of this server are stored here; another server's alias is
 * asked of its directory over federation (room_membership_remote.h).
 * Deleting needs the alias's creator, a server admin, or the power to
 * change the room's canonical alias, as in Synapse; a deleted alias leaves
 * the room's m.room.canonical_alias too, when the deleter may send it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "client.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "remote_rooms.h"
#include "room_send.h"
#include "room_access.h"
#include "room_membership_remote.h"
#include "rooms/state_lookup.h"

static int check_alias(hs_req *r, const char *alias, hs_err *err) {
    const char *colon = strchr(alias, ':');
    if (alias[0] != '#' || !colon || colon == alias + 1 || strlen(alias) > 255)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is not a room alias", alias);
    if (strcmp(colon + 1, r->srv->cfg->server_name) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Room alias must be local");
    return 0;
}

static int put_alias(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO room_aliases (alias, room_id, creator, created_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (alias) DO NOTHING");
    const char *alias = r->params[0];
    const char *room_id = json_string_value(json_object_get(r->json, "room_id"));
    if (check_alias(r, alias, err) < 0) return -1;
    if (!room_id) return hs_err_set(err, 400, "M_BAD_JSON", "'room_id' is required");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    if (client_require_joined(c, room_id, r->user_id, err) == 0) {
        char now[24];
        snprintf(now, sizeof now, "%lld", hs_now_ms());
        long n = db_exec(c, &ins, 4, (const char *[]){alias, room_id, r->user_id, now}, err);
        if (n == 0) hs_err_set(err, 409, "M_UNKNOWN", "Room alias %s already exists", alias);
        if (n == 1) *out = json_object(), rc = 200;
    }
    db_release(r->srv->db, c);
    return rc;
}

static int get_alias(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id FROM room_aliases WHERE alias = $1");
    const char *alias = r->params[0];
    if (alias[0] != '#' || !strchr(alias, ':'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is not a room alias", alias);
    if (strcmp(strchr(alias, ':') + 1, r->srv->cfg->server_name) != 0) {
        /* Another server's alias: its directory answers (federation). */
        json_t *servers;
        char *room_id = client_room_resolve_remote_alias(r, alias, &servers, err);
        if (!room_id) return -1;
        *out = json_pack("{s:s, s:o}", "room_id", room_id, "servers", servers);
        free(room_id);
        return 200;
    }
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 1, (const char *[]){alias}, err);
    int rc = -1;
    if (res && PQntuples(res)) {
        /* Ours first, then the other servers in the room, to join through
         * (Synapse; during a partial-state join those its answer listed). */
        const client_remote_rooms *h = client_remote_rooms_get();
        json_t *servers = h && h->alias_servers
                              ? h->alias_servers(c, r->srv, PQgetvalue(res, 0, 0), err)
                              : json_pack("[s]", r->srv->cfg->server_name);
        if (servers) {
            *out = json_pack("{s:s, s:o}", "room_id", PQgetvalue(res, 0, 0), "servers", servers);
            rc = 200;
        }
    } else if (res) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
    }
    PQclear(res);
    db_release(r->srv->db, c);
    return rc;
}

/* May the requester remove an alias of room_id created by creator? */
static bool may_delete(hs_req *r, db_conn *c, const char *room_id, const char *creator) {
    if (r->is_admin || !strcmp(creator, r->user_id)) return true;
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *pl = room_lookup_get(&l, "m.room.power_levels", "");
    const room_event *create = room_lookup_get(&l, "m.room.create", "");
    bool ok = false;
    if (create) {
        json_t *ev = pl ? json_object_get(json_object_get(pl->content, "events"), "m.room.canonical_alias") : NULL;
        json_t *sd = pl ? json_object_get(pl->content, "state_default") : NULL;
        long long need = json_is_integer(ev) ? json_integer_value(ev)
                         : json_is_integer(sd) ? json_integer_value(sd) : 50;
        ok = room_user_power_level(create->ver, r->user_id, room_lookup_get, &l) >= need;
    }
    room_lookup_clear(&l);
    return ok;
}

/* The room's canonical alias event without alias, or NULL when it does not
 * name it (new reference). */
static json_t *canonical_without(db_conn *c, const char *room_id, const char *alias) {
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *ev = room_lookup_get(&l, "m.room.canonical_alias", "");
    json_t *content = ev ? json_deep_copy(ev->content) : NULL;
    room_lookup_clear(&l);
    if (!content) return NULL;
    bool changed = false;
    const char *main_alias = json_string_value(json_object_get(content, "alias"));
    if (main_alias && !strcmp(main_alias, alias)) json_object_del(content, "alias"), changed = true;
    json_t *alt = json_object_get(content, "alt_aliases");
    for (size_t i = json_is_array(alt) ? json_array_size(alt) : 0; i-- > 0;) {
        const char *a = json_string_value(json_array_get(alt, i));
        if (a && !strcmp(a, alias)) json_array_remove(alt, i), changed = true;
    }
    if (changed && json_is_array(alt) && json_array_size(alt) == 0)
        json_object_del(content, "alt_aliases");
    if (!changed) json_decref(content), content = NULL;
    return content;
}

/* A deleted alias leaves the room's m.room.canonical_alias too (Synapse's
 * _update_canonical_alias): best effort, since the alias is gone either way
 * and the deleter may lack the power to send the event. */
static void drop_from_canonical(hs_req *r, const char *room_id, const char *alias) {
    hs_err e = {0};
    db_conn *c = db_acquire(r->srv->db, &e);
    json_t *content = c ? canonical_without(c, room_id, alias) : NULL;
    db_release(r->srv->db, c);
    if (!content) return;
    room_event *ev = client_room_send_state(r->srv, room_id, r->user_id, "m.room.canonical_alias",
                                            "", content, &e);
    if (!ev) hs_info("canonical alias of %s keeps deleted %s: %s", room_id, alias, e.msg);
    room_event_free(ev);
    json_decref(content);
}

static int delete_alias(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id, creator FROM room_aliases WHERE alias = $1");
    static db_stmt del = DB_STMT("DELETE FROM room_aliases WHERE alias = $1");
    const char *alias = r->params[0];
    if (check_alias(r, alias, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = -1;
    char *room_id = NULL;
    PGresult *res = db_run(c, &q, 1, (const char *[]){alias}, err);
    if (res && PQntuples(res) == 0) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
    } else if (res && !may_delete(r, c, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1))) {
        hs_err_set(err, 403, "M_FORBIDDEN", "You may not delete this alias");
    } else if (res && db_exec(c, &del, 1, (const char *[]){alias}, err) >= 0) {
        room_id = strdup(PQgetvalue(res, 0, 0));
        *out = json_object();
        rc = 200;
    }
    PQclear(res);
    db_release(r->srv->db, c);
    if (room_id) drop_from_canonical(r, room_id, alias);
    free(room_id);
    return rc;
}

static int get_room_aliases(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT alias FROM room_aliases WHERE room_id = $1 ORDER BY alias");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = NULL;
    if (client_require_joined(c, r->params[0], r->user_id, err) == 0)
        res = db_run(c, &q, 1, (const char *[]){r->params[0]}, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(res); i++) json_array_append_new(arr, json_string(PQgetvalue(res, i, 0)));
    PQclear(res);
    *out = json_pack("{s:o}", "aliases", arr);
    return 200;
}

/* Where alias points now: the room ID (malloc'd), or NULL with err (404
 * M_NOT_FOUND when nowhere). */
static char *alias_room(hs_req *r, db_conn *c, const char *alias, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id FROM room_aliases WHERE alias = $1");
    if (strcmp(strchr(alias, ':') + 1, r->srv->cfg->server_name) != 0) {
        json_t *servers;
        char *room_id = client_room_resolve_remote_alias(r, alias, &servers, err);
        json_decref(servers);
        return room_id;
    }
    PGresult *res = db_run(c, &q, 1, (const char *[]){alias}, err);
    if (!res) return NULL;
    char *id = PQntuples(res) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    if (!id) hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
    return id;
}

/* One alias of a canonical alias event: a string "#local:server" that
 * points to room_id. */
static int alias_points_here(hs_req *r, db_conn *c, const json_t *alias, const char *room_id,
                             hs_err *err) {
    const char *s = json_string_value(alias);
    if (!s) return hs_err_set(err, 400, "M_INVALID_PARAM", "Each alias must be a string");
    if (s[0] != '#' || !strchr(s, ':'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is not a room alias", s);
    hs_err e = {0};
    char *id = alias_room(r, c, s, &e);
    int rc = 0;
    if (!id && e.status != 404) {
        *err = e;
        rc = -1;
    } else if (!id || strcmp(id, room_id) != 0) {
        rc = hs_err_set(err, 400, "M_BAD_ALIAS", "Room alias %s does not point to the room", s);
    }
    free(id);
    return rc;
}

static bool in_array(const json_t *arr, const json_t *v) {
    size_t i;
    const json_t *x;
    json_array_foreach(arr, i, x) if (json_equal(x, v)) return true;
    return false;
}

int client_canonical_alias_check(hs_req *r, const char *room_id, const json_t *content,
                                 hs_err *err) {
    const json_t *alias = json_object_get(content, "alias");
    const json_t *alt = json_object_get(content, "alt_aliases");
    if (alt && !json_is_array(alt))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'alt_aliases' must be a list");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    /* Only what the event changes is checked: an alias deleted since it was
     * set may stay while the rest of the event is edited (Synapse). */
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *old = room_lookup_get(&l, "m.room.canonical_alias", "");
    const json_t *old_alias = old ? json_object_get(old->content, "alias") : NULL;
    const json_t *old_alt = old ? json_object_get(old->content, "alt_aliases") : NULL;
    if (!json_is_array(old_alt)) old_alt = NULL;
    int rc = 0;
    /* An empty or null alias removes it, which needs no check. */
    bool set = alias && !json_is_null(alias) && !(json_is_string(alias) && !*json_string_value(alias));
    if (set && !(old_alias && json_equal(alias, old_alias)))
        rc = alias_points_here(r, c, alias, room_id, err);
    size_t i;
    const json_t *a;
    if (rc == 0 && alt) json_array_foreach(alt, i, a) {
            if (old_alt && in_array(old_alt, a)) continue;
            if ((rc = alias_points_here(r, c, a, room_id, err)) < 0) break;
        }
    room_lookup_clear(&l);
    db_release(r->srv->db, c);
    return rc;
}

void client_aliases_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/client/v3/directory/room/{roomAlias}", put_alias, HS_AUTH | HS_R0 | HS_REFUSE_SUSPENDED);
    hs_route(rt, "GET", "/_matrix/client/v3/directory/room/{roomAlias}", get_alias, HS_AUTH_OPTIONAL | HS_R0 | HS_GUEST);
    hs_route(rt, "DELETE", "/_matrix/client/v3/directory/room/{roomAlias}", delete_alias, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/aliases", get_room_aliases, HS_AUTH);
}
