/* room_summary.c — what a room looks like to someone who may not be in it:
 * GET /_matrix/client/v1/room_summary/{roomIdOrAlias} (v1.15), and the room
 * entries /hierarchy is made of.
 *
 * Summaries come from room_summaries (sql/012), which a trigger keeps in step
 * with each room's current state. Who may see one follows Synapse (and the
 * spec's list for /hierarchy): members and invitees, anyone for public,
 * knockable or world-readable rooms, and users of an allowed room for
 * restricted ones. Everyone else gets 404, as if the room did not exist.
 *
 * Privacy: without a login a summary is only given when
 * allow_public_rooms_without_auth is set (the spec says servers MAY answer
 * anonymous requests). Rooms this server is not in come from the via
 * servers' federation /hierarchy, as Synapse gets them. Another server's
 * alias is asked of its directory (federation /query/directory), whose
 * servers are then asked first, before any via of the request. */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "channels_internal.h"
#include "client.h"
#include "remote_rooms.h"
#include "room_membership_remote.h"
#include "rooms/rooms.h"

const char *channel_membership(db_conn *c, const char *room_id, const char *user_id, char *buf,
                               size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT membership FROM current_state"
        " WHERE room_id = $1 AND type = 'm.room.member' AND state_key = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return NULL;
    snprintf(buf, n, "%s", PQntuples(r) && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return buf;
}

int channel_host_joined(db_conn *c, const char *room_id, const char *server_name, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join' AND right(state_key, length($2) + 1) = ':' || $2 LIMIT 1");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, server_name}, err);
    if (!r) return -1;
    int joined = PQntuples(r) > 0;
    PQclear(r);
    return joined;
}

int channel_in_allowed_room(db_conn *c, const json_t *allow, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = ANY($1::text[]) AND type = 'm.room.member'"
        " AND state_key = $2 AND membership = 'join' LIMIT 1");
    size_t i, n = 0;
    const json_t *a;
    const char **ids = calloc(json_array_size(allow) + 1, sizeof *ids);
    json_array_foreach(allow, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        const char *room = json_string_value(json_object_get(a, "room_id"));
        if (type && room && !strcmp(type, "m.room_membership")) ids[n++] = room;
    }
    int in = 0;
    if (n) {
        char *arr = db_text_array(ids, n);
        PGresult *r = db_run(c, &q, 2, (const char *[]){arr, user_id}, err);
        free(arr);
        in = r ? PQntuples(r) > 0 : -1;
        PQclear(r);
    }
    free(ids);
    return in;
}

/* Restricted join rules count only in room versions that have them. */
static bool restricted_rule(const char *rule, const char *version) {
    const room_version *v = room_version_get(version ? version : "");
    if (!rule || !v) return false;
    return (!strcmp(rule, "restricted") && v->restricted_join) ||
           (!strcmp(rule, "knock_restricted") && v->knock_restricted);
}

static bool knockable_rule(const char *rule, const char *version) {
    const room_version *v = room_version_get(version ? version : "");
    if (!rule || !v) return false;
    return (!strcmp(rule, "knock") && v->knock) ||
           (!strcmp(rule, "knock_restricted") && v->knock_restricted);
}

int channel_accessible(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT s.join_rule, s.history_visibility, s.join_allow::text, r.room_version"
        " FROM room_summaries s JOIN rooms r USING (room_id) WHERE s.room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    if (!PQntuples(r)) return PQclear(r), 0;
    const char *rule = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
    const char *hist = PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1);
    const char *version = PQgetvalue(r, 0, 3);
    int ok = (rule && !strcmp(rule, "public")) || knockable_rule(rule, version) ||
             !strcmp(hist, "world_readable");
    if (!ok && user_id) {
        char m[32];
        const char *mem = channel_membership(c, room_id, user_id, m, sizeof m, err);
        if (!mem) ok = -1;
        else if (!strcmp(mem, "join") || !strcmp(mem, "invite")) ok = 1;
        else if (restricted_rule(rule, version) && !PQgetisnull(r, 0, 2)) {
            json_t *allow = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
            ok = channel_in_allowed_room(c, allow, user_id, err);
            json_decref(allow);
        }
    }
    PQclear(r);
    return ok;
}

static void set_str(json_t *o, const char *k, PGresult *r, int col) {
    if (!PQgetisnull(r, 0, col)) json_object_set_new(o, k, json_string(PQgetvalue(r, 0, col)));
}

json_t *channel_summary(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT s.room_id, r.room_version, s.name, s.topic, s.canonical_alias, s.joined_members,"
        " s.avatar_url, s.join_rule, s.history_visibility, s.guest_access, s.room_type,"
        " s.encryption, s.join_allow::text"
        " FROM room_summaries s JOIN rooms r USING (room_id) WHERE s.room_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    if (!PQntuples(r)) {
        PQclear(r);
        return hs_err_set(err, 404, "M_NOT_FOUND", "Room not found or is not accessible"), NULL;
    }
    const char *hist = PQgetisnull(r, 0, 8) ? "" : PQgetvalue(r, 0, 8);
    const char *guest = PQgetisnull(r, 0, 9) ? "" : PQgetvalue(r, 0, 9);
    json_t *o = json_pack("{s:s, s:s, s:I, s:b, s:b}", "room_id", PQgetvalue(r, 0, 0),
                          "room_version", PQgetvalue(r, 0, 1), "num_joined_members",
                          (json_int_t)atoll(PQgetvalue(r, 0, 5)), "world_readable",
                          !strcmp(hist, "world_readable"), "guest_can_join",
                          !strcmp(guest, "can_join"));
    set_str(o, "name", r, 2);
    set_str(o, "topic", r, 3);
    set_str(o, "canonical_alias", r, 4);
    set_str(o, "avatar_url", r, 6);
    set_str(o, "join_rule", r, 7);
    set_str(o, "room_type", r, 10);
    set_str(o, "encryption", r, 11);
    const char *rule = PQgetisnull(r, 0, 7) ? NULL : PQgetvalue(r, 0, 7);
    if (restricted_rule(rule, PQgetvalue(r, 0, 1)) && !PQgetisnull(r, 0, 12)) {
        json_t *allow = json_loads(PQgetvalue(r, 0, 12), 0, NULL), *ids = json_array();
        size_t i;
        json_t *a;
        json_array_foreach(allow, i, a) {
            const char *type = json_string_value(json_object_get(a, "type"));
            json_t *room = json_object_get(a, "room_id");
            if (type && !strcmp(type, "m.room_membership") && json_is_string(room))
                json_array_append(ids, room);
        }
        if (json_array_size(ids)) json_object_set(o, "allowed_room_ids", ids);
        json_decref(ids);
        json_decref(allow);
    }
    PQclear(r);
    return o;
}

/* The room ID of roomIdOrAlias when it is a room ID or one of our aliases
 * (remote_alias has asked about the others). */
static char *resolve(db_conn *c, const char *s, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id FROM room_aliases WHERE alias = $1");
    if (s[0] == '!') return strdup(s);
    if (s[0] != '#' || !strchr(s, ':'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is neither a room ID nor an alias", s),
               NULL;
    PGresult *r = db_run(c, &q, 1, (const char *[]){s}, err);
    if (!r) return NULL;
    char *id = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    if (!id) hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", s);
    return id;
}

static enum MHD_Result collect_via(void *arg, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    if (value && *value && !strcmp(key, "via")) json_array_append_new(arg, json_string(value));
    return MHD_YES;
}

/* Another server's alias (s, when it is one): its directory's room ID, with
 * its servers appended to via. NULL with *asked false when s is not such an
 * alias; NULL with *asked and err when the directory did not answer. */
static char *remote_alias(hs_req *r, const char *s, json_t *via, bool *asked, hs_err *err) {
    const char *colon = s[0] == '#' ? strchr(s, ':') : NULL;
    *asked = colon && strcmp(colon + 1, r->srv->cfg->server_name) != 0;
    if (!*asked) return NULL;
    json_t *servers = NULL;
    char *room_id = client_room_resolve_remote_alias(r, s, &servers, err);
    if (room_id && room_id[0] != '!') {
        free(room_id), room_id = NULL;
        hs_err_set(err, 502, "M_UNKNOWN", "The directory of %s sent no room ID", colon + 1);
    }
    if (room_id) json_array_extend(via, servers);
    json_decref(servers);
    return room_id;
}

/* A room we are not in, from one of the via servers (the federation
 * /hierarchy of the room, as Synapse asks), if the user may see it. */
static json_t *remote_summary(hs_req *r, db_conn *c, const char *room_id, const json_t *via,
                              hs_err *err) {
    json_t *res = json_array_size(via) ? channel_fed_hierarchy(r->srv, room_id, via, true) : NULL;
    json_t *room = res ? json_deep_copy(json_object_get(res, "room")) : NULL;
    json_decref(res);
    if (room && (!json_is_string(json_object_get(room, "room_id")) ||
                 strcmp(json_string_value(json_object_get(room, "room_id")), room_id) ||
                 channel_remote_accessible(c, room_id, room, r->user_id) <= 0))
        json_decref(room), room = NULL;
    if (!room) return hs_err_set(err, 404, "M_NOT_FOUND", "Room not found or is not accessible"), NULL;
    json_object_del(room, "children_state");
    return room;
}

static int summary_for(hs_req *r, db_conn *c, const char *room_id, const json_t *via, json_t **out,
                       hs_err *err) {
    int joined = channel_host_joined(c, room_id, r->srv->cfg->server_name, err);
    if (joined < 0) return -1;
    int ok = joined ? channel_accessible(c, room_id, r->user_id, err) : 1;
    if (ok < 0) return -1;
    if (!ok) return hs_err_set(err, 404, "M_NOT_FOUND", "Room not found or is not accessible");
    json_t *s = joined ? channel_summary(c, room_id, err) : remote_summary(r, c, room_id, via, err);
    if (!s) return -1;
    if (r->user_id) {
        char m[32];
        const char *mem = channel_membership(c, room_id, r->user_id, m, sizeof m, err);
        if (!mem) return json_decref(s), -1;
        json_object_set_new(s, "membership", json_string(*mem ? mem : "leave"));
    }
    *out = s;
    return 200;
}

static int get_room_summary(hs_req *r, json_t **out, hs_err *err) {
    if (!r->user_id && !r->srv->cfg->allow_public_rooms_without_auth)
        return hs_err_set(err, 401, "M_MISSING_TOKEN", "Missing access token");
    json_t *via = json_array();
    bool asked;
    char *room_id = remote_alias(r, r->params[0], via, &asked, err);
    if (r->conn) MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_via, via);
    db_conn *c = asked && !room_id ? NULL : db_acquire(r->srv->db, err);
    if (c && !room_id) room_id = resolve(c, r->params[0], err);
    hs_err e = {0};
    if (c && room_id && client_room_is_partial(c, room_id, &e) > 0) {
        /* Joined with partial state: its member count comes with the full
         * state, as for /members (without holding a connection meanwhile). */
        db_release(r->srv->db, c);
        client_await_full_state(r->srv, room_id);
        c = db_acquire(r->srv->db, err);
    }
    int rc = c && room_id ? summary_for(r, c, room_id, via, out, err) : -1;
    free(room_id);
    json_decref(via);
    db_release(r->srv->db, c);
    return rc;
}

void channel_summary_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v1/room_summary/{roomIdOrAlias}", get_room_summary,
             HS_AUTH_OPTIONAL | HS_GUEST);
}
