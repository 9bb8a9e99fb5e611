/* restricted_join.c — joining a restricted room through space membership,
 * and who acts for a channel when nobody names a user.
 *
 * The auth rules accept a join into a restricted (or knock_restricted) room
 * when join_authorised_via_users_server names a joined member able to invite
 * whose server signed the join (5.3.5). The spec leaves it to the resident
 * server to check the allow conditions first (a joined member of one of the
 * allowed rooms) and to pick that member: we pick the local member with the
 * highest power level, as the one least likely to lose it, and our own
 * signature on the event vouches for them. Users already invited (or joined)
 * need no authoriser.
 *
 * When no local member may invite, or we cannot tell whether the user is in
 * an allowed room (we are not in it), the join is not ours to make even
 * though we are in the room: it goes through a server whose users may
 * invite, whose make_join names one of them (Synapse's
 * _should_perform_remote_join). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "channels_internal.h"
#include "remote_rooms.h"
#include "rooms/rooms.h"
#include "rooms/state_lookup.h"

/* Joined members of the room on server_name (NULL: on every server) with
 * their power levels, highest first (ties by user ID); *n of them, best in
 * out[0]. */
static int ranked_members(db_conn *c, const char *room_id, const char *server_name,
                          char ***ids, long long **levels, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join'"
        " AND ($2::text IS NULL OR right(state_key, length($2) + 1) = ':' || $2)"
        " ORDER BY state_key");
    *ids = NULL, *levels = NULL, *n = 0;
    const room_version *v = room_store_room_version(c, room_id, err);
    if (!v) return -1;
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, server_name}, err);
    if (!r) return -1;
    size_t m = (size_t)PQntuples(r);
    *ids = calloc(m + 1, sizeof **ids);
    *levels = calloc(m + 1, sizeof **levels);
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    for (size_t i = 0; i < m; i++) {
        /* Insertion by level keeps the query's user ID order among equals. */
        const char *u = PQgetvalue(r, (int)i, 0);
        long long lvl = room_user_power_level(v, u, room_lookup_get, &l);
        size_t k = i;
        while (k > 0 && (*levels)[k - 1] < lvl) {
            (*levels)[k] = (*levels)[k - 1];
            (*ids)[k] = (*ids)[k - 1];
            k--;
        }
        (*levels)[k] = lvl;
        (*ids)[k] = strdup(u);
    }
    *n = m;
    int rc = 0;
    if (l.failed) *err = l.err, rc = -1;
    room_lookup_clear(&l);
    PQclear(r);
    return rc;
}

static void free_ranked(char **ids, long long *levels, size_t n) {
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(levels);
}

char *client_channel_top_member(db_conn *c, const char *room_id, const char *server_name,
                                hs_err *err) {
    char **ids;
    long long *levels;
    size_t n;
    if (ranked_members(c, room_id, server_name, &ids, &levels, &n, err) < 0)
        return free_ranked(ids, levels, n), NULL;
    char *top = n ? strdup(ids[0]) : NULL;
    free_ranked(ids, levels, n);
    if (!top) hs_err_set(err, 404, "M_NOT_FOUND", "No local member of %s can act for it", room_id);
    return top;
}

/* The invite level of the room's current power levels (0 by default). */
static int invite_level(db_conn *c, const char *room_id, long long *out, hs_err *err) {
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    const room_event *pl = room_lookup_get(&l, "m.room.power_levels", "");
    const json_t *v = pl ? json_object_get(pl->content, "invite") : NULL;
    *out = json_is_integer(v) ? json_integer_value(v)
           : json_is_string(v) ? atoll(json_string_value(v))
                               : 0;
    int rc = l.failed ? (*err = l.err, -1) : 0;
    room_lookup_clear(&l);
    return rc;
}

static int restricted_rules(db_conn *c, const char *room_id, char **rule, json_t **allow,
                            const room_version **v, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT join_rule, join_allow::text FROM room_summaries WHERE room_id = $1");
    *rule = NULL, *allow = NULL;
    if (!(*v = room_store_room_version(c, room_id, err))) return -1;
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    if (PQntuples(r) && !PQgetisnull(r, 0, 0)) *rule = strdup(PQgetvalue(r, 0, 0));
    if (PQntuples(r) && !PQgetisnull(r, 0, 1)) *allow = json_loads(PQgetvalue(r, 0, 1), 0, NULL);
    PQclear(r);
    return 0;
}

static int pick_authoriser(db_conn *c, const char *room_id, const char *server_name,
                           long long need, char **authoriser, hs_err *err) {
    char **ids;
    long long *levels;
    size_t n;
    if (ranked_members(c, room_id, server_name, &ids, &levels, &n, err) < 0)
        return free_ranked(ids, levels, n), -1;
    if (n && levels[0] >= need) *authoriser = strdup(ids[0]);
    free_ranked(ids, levels, n);
    return 0;
}

/* The servers of the room's joined members able to invite, best member's
 * first, ours left out (a new array; empty when there are none). */
static json_t *inviting_servers(db_conn *c, const char *room_id, const char *ours,
                                long long need, hs_err *err) {
    char **ids;
    long long *levels;
    size_t n;
    if (ranked_members(c, room_id, NULL, &ids, &levels, &n, err) < 0)
        return free_ranked(ids, levels, n), NULL;
    json_t *out = json_array(), *seen = json_object();
    for (size_t i = 0; i < n && levels[i] >= need; i++) {
        const char *colon = strchr(ids[i], ':');
        if (!colon || !strcmp(colon + 1, ours) || json_object_get(seen, colon + 1)) continue;
        json_object_set_new(seen, colon + 1, json_true());
        json_array_append_new(out, json_string(colon + 1));
    }
    json_decref(seen);
    free_ranked(ids, levels, n);
    return out;
}

/* Is one of the allowed rooms one we are not in (so the user may be a
 * member there without our knowing)? 1, 0, -1. */
static int allowed_room_unknown(db_conn *c, const hs_server *srv, const json_t *allow,
                                hs_err *err) {
    size_t i;
    const json_t *a;
    json_array_foreach(allow, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        const char *room = json_string_value(json_object_get(a, "room_id"));
        if (!type || !room || strcmp(type, "m.room_membership")) continue;
        int in = client_room_has_local_member(c, srv, room, err);
        if (in <= 0) return in < 0 ? -1 : 1;
    }
    return 0;
}

/* A user neither joined nor invited: 0 with *authoriser (a local join),
 * 1 with *via (the join is another server's to make), or -1. */
static int restricted_plan(db_conn *c, const hs_server *srv, const char *room_id,
                           const char *user_id, const json_t *allow, char **authoriser,
                           json_t **via, hs_err *err) {
    const char *ours = srv->cfg->server_name;
    long long need;
    if (invite_level(c, room_id, &need, err) < 0 ||
        pick_authoriser(c, room_id, ours, need, authoriser, err) < 0)
        return -1;
    json_t *others = inviting_servers(c, room_id, ours, need, err);
    if (!others) return -1;
    int rc = 0;
    if (!*authoriser) {
        /* Nobody here may let the user in: ask a server whose users may. */
        rc = json_array_size(others) ? 1
                                     : hs_err_set(err, 400, "M_UNABLE_TO_GRANT_JOIN",
                                                  "No user on this server can let you into %s",
                                                  room_id);
    } else {
        int in = channel_in_allowed_room(c, allow, user_id, err);
        int unknown = in == 0 ? allowed_room_unknown(c, srv, allow, err) : 0;
        if (in < 0 || unknown < 0) rc = -1;
        else if (!in && unknown && json_array_size(others)) rc = 1;
        else if (!in)
            rc = hs_err_set(err, 403, "M_FORBIDDEN", "You do not belong to any of the required "
                                                    "rooms/spaces to join this room.");
    }
    if (rc == 1) *via = json_incref(others);
    if (rc != 0) free(*authoriser), *authoriser = NULL;
    json_decref(others);
    return rc;
}

static int authorise(db_conn *c, const hs_server *srv, const char *room_id, const char *user_id,
                     char **authoriser, json_t **via, hs_err *err) {
    char *rule;
    json_t *allow;
    const room_version *v;
    if (restricted_rules(c, room_id, &rule, &allow, &v, err) < 0) return -1;
    bool restricted = rule && ((!strcmp(rule, "restricted") && v->restricted_join) ||
                               (!strcmp(rule, "knock_restricted") && v->knock_restricted));
    int rc = 0;
    char m[32];
    const char *mem = restricted ? channel_membership(c, room_id, user_id, m, sizeof m, err) : "";
    if (!mem) rc = -1;
    else if (restricted && strcmp(mem, "join") && strcmp(mem, "invite"))
        rc = restricted_plan(c, srv, room_id, user_id, allow, authoriser, via, err);
    free(rule);
    json_decref(allow);
    return rc;
}

int client_channel_join_content(hs_server *srv, const char *room_id, const char *user_id,
                                json_t *content, json_t **via, hs_err *err) {
    char *authoriser = NULL;
    *via = NULL;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    int rc = authorise(c, srv, room_id, user_id, &authoriser, via, err);
    db_release(srv->db, c);
    if (rc == 0 && authoriser)
        json_object_set_new(content, "join_authorised_via_users_server", json_string(authoriser));
    free(authoriser);
    return rc;
}
