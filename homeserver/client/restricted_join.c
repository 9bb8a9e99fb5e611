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
 * need no authoriser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "channels_internal.h"
#include "rooms/rooms.h"
#include "rooms/state_lookup.h"

/* Local joined members of the room with their power levels, highest first
 * (ties by user ID); *n of them, best in out[0]. */
static int ranked_members(db_conn *c, const char *room_id, const char *server_name,
                          char ***ids, long long **levels, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join' AND right(state_key, length($2) + 1) = ':' || $2"
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
                           char **authoriser, hs_err *err) {
    long long need;
    char **ids;
    long long *levels;
    size_t n;
    if (invite_level(c, room_id, &need, err) < 0 ||
        ranked_members(c, room_id, server_name, &ids, &levels, &n, err) < 0)
        return -1;
    if (n && levels[0] >= need) *authoriser = strdup(ids[0]);
    free_ranked(ids, levels, n);
    return *authoriser ? 0
                       : hs_err_set(err, 400, "M_UNABLE_TO_GRANT_JOIN",
                                    "No user on this server can let you into %s", room_id);
}

static int authorise(db_conn *c, const hs_server *srv, const char *room_id, const char *user_id,
                     char **authoriser, hs_err *err) {
    char *rule;
    json_t *allow;
    const room_version *v;
    if (restricted_rules(c, room_id, &rule, &allow, &v, err) < 0) return -1;
    bool restricted = rule && ((!strcmp(rule, "restricted") && v->restricted_join) ||
                               (!strcmp(rule, "knock_restricted") && v->knock_restricted));
    int rc = 0;
    char m[32];
    const char *mem = restricted ? channel_membership(c, room_id, user_id, m, sizeof m, err) : "";
    if (!mem) {
        rc = -1;
    } else if (restricted && strcmp(mem, "join") && strcmp(mem, "invite")) {
        int in = channel_in_allowed_room(c, allow, user_id, err);
        if (in < 0) rc = -1;
        else if (!in)
            rc = hs_err_set(err, 403, "M_FORBIDDEN", "You do not belong to any of the required "
                                                    "rooms/spaces to join this room.");
        else rc = pick_authoriser(c, room_id, srv->cfg->server_name, authoriser, err);
    }
    free(rule);
    json_decref(allow);
    return rc;
}

int client_channel_join_content(hs_server *srv, const char *room_id, const char *user_id,
                                json_t *content, hs_err *err) {
    char *authoriser = NULL;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    int rc = authorise(c, srv, room_id, user_id, &authoriser, err);
    db_release(srv->db, c);
    if (rc == 0 && authoriser)
        json_object_set_new(content, "join_authorised_via_users_server", json_string(authoriser));
    free(authoriser);
    return rc;
}
