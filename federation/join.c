/* join.c — the resident side of joining: GET /v1/make_join/{roomId}/{userId}
 * ?ver=… and PUT /v2/send_join/{roomId}/{eventId}[?omit_members=true] (and
 * the deprecated v1, whose answer is [200, {...}]).
 *
 * Restricted rooms (spec "Restricted rooms"): a user neither invited nor
 * joined may join when they are in one of the rooms the join rules allow;
 * we can tell only for rooms we are in (else M_UNABLE_TO_AUTHORISE_JOIN),
 * and one of our members able to invite must vouch for the join (else
 * M_UNABLE_TO_GRANT_JOIN): the template names them, and send_join adds our
 * signature before the event goes anywhere.
 *
 * send_join answers with the state before the join and its auth chain.
 * With omit_members (MSC3706, spec v1.6), member events are left out but
 * the joiner's own and the room's heroes' (when it has no name nor alias),
 * state events are left out of the auth chain, and servers_in_room lists
 * who was in the room before the join, as Synapse answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms/state_lookup.h"
#include "rooms_internal.h"

/* ---- restricted joins ---- */

/* Does any allowed room say user_id may join? *known: we are in one of them;
 * *any: the allow list names a room at all. */
static int allowed_by_rooms(db_conn *c, const hs_server *srv, const json_t *allow,
                            const char *user_id, bool *known, bool *any, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
                " AND state_key = $2 AND membership = 'join'");
    *known = *any = false;
    size_t i;
    json_t *a;
    json_array_foreach(allow, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        const char *rid = json_string_value(json_object_get(a, "room_id"));
        if (!type || strcmp(type, "m.room_membership") || !rid) continue;
        *any = true;
        int in = fed_server_in_room(c, rid, srv->cfg->server_name, err);
        if (in < 0) return -1;
        if (!in) continue;
        *known = true;
        PGresult *r = db_run(c, &q, 2, (const char *[]){rid, user_id}, err);
        if (!r) return -1;
        int yes = PQntuples(r) > 0;
        PQclear(r);
        if (yes) return 1;
    }
    return 0;
}

/* Our joined member of room_id with the highest power level that reaches
 * the invite level (ties: the smallest user ID), into buf; false if none. */
static bool pick_authoriser(db_conn *c, const hs_server *srv, const char *room_id, char *buf,
                            size_t n, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
                " AND membership = 'join' AND substr(state_key, strpos(state_key, ':') + 1) = $2"
                " ORDER BY state_key COLLATE \"C\"");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, srv->cfg->server_name}, err);
    if (!r) return false;
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *pl = room_lookup_get(&l, "m.room.power_levels", "");
    const room_event *create = room_lookup_get(&l, "m.room.create", "");
    const json_t *inv = pl ? json_object_get(pl->content, "invite") : NULL;
    long long need = json_is_integer(inv) ? json_integer_value(inv) : 0, best = 0;
    bool found = false;
    for (int i = 0; create && i < PQntuples(r); i++) {
        const char *u = PQgetvalue(r, i, 0);
        long long p = room_user_power_level(create->ver, u, room_lookup_get, &l);
        if (p >= need && (!found || p > best)) snprintf(buf, n, "%s", u), best = p, found = true;
    }
    room_lookup_clear(&l);
    PQclear(r);
    return found;
}

int fed_restricted_join(db_conn *c, const hs_server *srv, const char *room_id, const char *user_id,
                        json_t *content, hs_err *err) {
    static db_stmt mem =
        DB_STMT("SELECT membership FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
                " AND state_key = $2");
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *jr = room_lookup_get(&l, "m.room.join_rules", "");
    const char *rule = jr ? json_string_value(json_object_get(jr->content, "join_rule")) : NULL;
    bool restricted = rule && ((!strcmp(rule, "restricted") && jr->ver->restricted_join) ||
                               (!strcmp(rule, "knock_restricted") && jr->ver->knock_restricted));
    json_t *allow = restricted ? json_incref(json_object_get(jr->content, "allow")) : NULL;
    room_lookup_clear(&l);
    if (!restricted) return 0;
    PGresult *r = db_run(c, &mem, 2, (const char *[]){room_id, user_id}, err);
    bool already = r && PQntuples(r) &&
                   (!strcmp(PQgetvalue(r, 0, 0), "join") || !strcmp(PQgetvalue(r, 0, 0), "invite"));
    PQclear(r);
    bool known = false, any = false;
    int ok = r && !already ? allowed_by_rooms(c, srv, allow, user_id, &known, &any, err) : 0;
    json_decref(allow);
    if (!r || ok < 0) return -1;
    if (already) return 0; /* invited or joined: the auth rules need nobody's word */
    /* No room to be a member of (knock_restricted without an allow list, as
     * Complement's knocking tests make): an invite is the only way in. */
    if (!any) return hs_err_set(err, 403, "M_FORBIDDEN", "You are not invited to this room");
    if (!known)
        return hs_err_set(err, 400, "M_UNABLE_TO_AUTHORISE_JOIN",
                          "This server is in none of the rooms that allow joining %s", room_id);
    if (!ok)
        return hs_err_set(err, 403, "M_FORBIDDEN",
                          "You are not in any of the rooms required to join");
    char who[256];
    if (!pick_authoriser(c, srv, room_id, who, sizeof who, err))
        return err->status >= 500 ? -1
                                  : hs_err_set(err, 400, "M_UNABLE_TO_GRANT_JOIN",
                                               "No user of this server can invite you");
    json_object_set_new(content, "join_authorised_via_users_server", json_string(who));
    return 0;
}

/* ---- make_join ---- */

static int get_make_join(hs_req *r, json_t **out, hs_err *err) {
    json_t *content = json_pack("{s:s}", "membership", "join");
    int rc = fed_make_membership(r, "join", content, true, out, err);
    json_decref(content);
    return rc;
}

/* ---- send_join ---- */

/* The room's heroes for a room without name or alias: up to 5 members
 * (joined or invited) other than the joiner, in the order they arrived. */
static void add_heroes(db_conn *c, const room_state_map *st, const char *joiner, const char **ids,
                       size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.event_id FROM events e WHERE e.event_id = ANY($1::text[]) AND e.state_key <> $2"
        " AND convert_from(e.json, 'UTF8')::json #>> '{content,membership}' IN ('join', 'invite')"
        " ORDER BY e.stream_ordering LIMIT 5");
    if (room_state_map_get(st, "m.room.name", "") ||
        room_state_map_get(st, "m.room.canonical_alias", ""))
        return;
    size_t it = 0, k = 0, total = room_state_map_count(st);
    const char *t, *sk, *id, **members = calloc(total + 1, sizeof *members);
    while (members && room_state_map_next(st, &it, &t, &sk, &id))
        if (!strcmp(t, "m.room.member")) members[k++] = id;
    char *arr = members ? db_text_array(members, k) : NULL;
    free(members);
    PGresult *r = arr ? db_run(c, &q, 2, (const char *[]){arr, joiner}, err) : NULL;
    free(arr);
    for (int i = 0; r && i < PQntuples(r); i++) ids[(*n)++] = strdup(PQgetvalue(r, i, 0));
    PQclear(r);
}

/* The IDs of the state to return: all, or without members (partial state). */
static const char **state_ids(db_conn *c, const room_state_map *st, const char *joiner,
                              bool partial, size_t *n, hs_err *err) {
    size_t it = 0, total = room_state_map_count(st);
    const char *t, *sk, *id, **ids = calloc(total + 8, sizeof *ids);
    *n = 0;
    while (ids && room_state_map_next(st, &it, &t, &sk, &id))
        if (!partial || strcmp(t, "m.room.member") || !strcmp(sk, joiner)) ids[(*n)++] = strdup(id);
    if (ids && partial) add_heroes(c, st, joiner, ids, n, err);
    return ids;
}

static json_t *join_answer(db_conn *c, const room_event *ev, const room_state_map *st, bool partial,
                           hs_err *err) {
    size_t n = 0, n_chain = 0;
    const char **ids = state_ids(c, st, ev->state_key, partial, &n, err);
    char **chain = NULL;
    json_t *state = json_array(), *auth = json_array(), *out = NULL;
    /* The auth chain of the state and of the join itself. */
    if (ids) ids[n] = ev->event_id;
    if (ids && fed_auth_chain(c, ev->room_id, ids, n + 1, &chain, &n_chain, err) == 0) {
        size_t keep = 0;
        for (size_t i = 0; i < n_chain; i++) {
            bool in_state = false;
            for (size_t k = 0; partial && k < n && !in_state; k++)
                in_state = !strcmp(ids[k], chain[i]);
            if (!in_state) chain[keep++] = chain[i];
            else free(chain[i]);
        }
        n_chain = keep;
        if (fed_pdus_for_server(c, NULL, ids, n, false, state, err) == 0 &&
            fed_pdus_for_server(c, NULL, (const char *const *)chain, n_chain, false, auth, err) ==
                0)
            out = json_pack("{s:O, s:O, s:O, s:b}", "state", state, "auth_chain", auth, "event",
                            ev->json, "members_omitted", partial);
    }
    for (size_t i = 0; ids && i < n; i++) free((char *)ids[i]);
    free(ids);
    if (chain) room_store_free_ids(chain, n_chain);
    json_decref(state), json_decref(auth);
    return out;
}

/* Servers with a joined member in a state (the state before the join). */
static json_t *servers_in_state(db_conn *c, const room_state_map *st, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT substr(state_key, strpos(state_key, ':') + 1) FROM events"
        " WHERE event_id = ANY($1::text[])"
        " AND convert_from(json, 'UTF8')::json #>> '{content,membership}' = 'join' ORDER BY 1");
    size_t it = 0, k = 0;
    const char *t, *sk, *id, **members = calloc(room_state_map_count(st) + 1, sizeof *members);
    while (members && room_state_map_next(st, &it, &t, &sk, &id))
        if (!strcmp(t, "m.room.member")) members[k++] = id;
    char *arr = members ? db_text_array(members, k) : NULL;
    free(members);
    PGresult *r = arr ? db_run(c, &q, 1, (const char *[]){arr}, err) : NULL;
    free(arr);
    if (!r) return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return out;
}

static int send_join(hs_req *r, bool partial, json_t **out, hs_err *err) {
    room_event *ev;
    room_state_map *before;
    if (fed_send_membership(r, "join", &ev, &before, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    *out = c ? join_answer(c, ev, before, partial, err) : NULL;
    json_t *servers = *out && partial ? servers_in_state(c, before, err) : NULL;
    db_release(r->srv->db, c);
    if (servers) json_object_set_new(*out, "servers_in_room", servers);
    else if (*out && partial) json_decref(*out), *out = NULL;
    room_event_free(ev);
    room_state_map_free(before);
    return *out ? 200 : -1;
}

static int put_send_join(hs_req *r, json_t **out, hs_err *err) {
    const char *om = hs_req_query(r, "omit_members");
    return send_join(r, om && !strcmp(om, "true"), out, err);
}

/* v1 (still in the spec, deprecated): the same join, the whole state, the
 * answer inside [200, {...}] with "origin", as it was first specified. */
static int put_send_join_v1(hs_req *r, json_t **out, hs_err *err) {
    json_t *body = NULL;
    if (send_join(r, false, &body, err) < 0) return -1;
    json_object_del(body, "members_omitted");
    json_object_set_new(body, "origin", json_string(r->srv->cfg->server_name));
    *out = fed_v1_answer(body);
    return 200;
}

void fed_join_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/make_join/{roomId}/{userId}", get_make_join,
             HS_FEDERATION);
    hs_route(rt, "PUT", "/_matrix/federation/v1/send_join/{roomId}/{eventId}", put_send_join_v1,
             HS_FEDERATION);
    hs_route(rt, "PUT", "/_matrix/federation/v2/send_join/{roomId}/{eventId}", put_send_join,
             HS_FEDERATION);
}
