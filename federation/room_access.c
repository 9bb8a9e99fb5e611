/* room_access.c — which servers are in a room, and whether its server ACL
 * (m.room.server_acl) lets one in: the checks every room endpoint makes of
 * the server calling it (spec: "Server Access Control Lists"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"
#include "transport_internal.h"

int fed_server_in_room(db_conn *c, const char *room_id, const char *server, hs_err *err) {
    /* A partial-state room: the servers its join answer listed count as in
     * it until the full state says who is. */
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join' AND substr(state_key, strpos(state_key, ':') + 1) = $2"
        " UNION ALL SELECT 1 FROM fed_partial_state_rooms WHERE room_id = $1"
        " AND $2 = ANY(servers) LIMIT 1");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, server}, err);
    if (!r) return -1;
    int in = PQntuples(r) > 0;
    PQclear(r);
    return in;
}

json_t *fed_servers_in_room(db_conn *c, const char *room_id, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT substr(state_key, strpos(state_key, ':') + 1) FROM current_state"
        " WHERE room_id = $1 AND type = 'm.room.member' AND membership = 'join'"
        " UNION SELECT unnest(servers) FROM fed_partial_state_rooms WHERE room_id = $1 ORDER BY 1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return NULL;
    json_t *out = json_array();
    for (int i = 0; i < PQntuples(r); i++)
        json_array_append_new(out, json_string(PQgetvalue(r, i, 0)));
    PQclear(r);
    return out;
}

/* '*' any run of characters, '?' one character; nothing else is special. */
bool fed_acl_glob(const char *g, const char *h) {
    const char *star = NULL, *retry = NULL;
    while (*h) {
        if (*g == '*') {
            star = g++;
            retry = h;
        } else if (*g && (*g == '?' || tolower((unsigned char)*g) == tolower((unsigned char)*h))) {
            g++, h++;
        } else if (star) {
            g = star + 1;
            h = ++retry;
        } else {
            return false;
        }
    }
    while (*g == '*') g++;
    return *g == 0;
}

static bool any_glob(const json_t *list, const char *host) {
    size_t i;
    json_t *g;
    json_array_foreach(list, i, g) if (json_is_string(g) &&
                                       fed_acl_glob(json_string_value(g), host)) return true;
    return false;
}

/* The spec's order: IP literals (when refused), then deny, then allow. */
bool fed_acl_content_allows(const json_t *content, const char *server) {
    char host[256];
    int port, family;
    if (fed_parse_server_name(server, host, sizeof host, &port, &family) < 0) return false;
    const json_t *ip = json_object_get(content, "allow_ip_literals");
    if (family && json_is_false(ip)) return false;
    if (family == 6) { /* Synapse matches IPv6 literals with their brackets */
        char bare[256];
        snprintf(bare, sizeof bare, "%s", host);
        snprintf(host, sizeof host, "[%s]", bare);
    }
    if (any_glob(json_object_get(content, "deny"), host)) return false;
    return any_glob(json_object_get(content, "allow"), host);
}

int fed_acl_allows(db_conn *c, const char *room_id, const char *server, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id FROM current_state WHERE room_id = $1 AND type = 'm.room.server_acl'"
        " AND state_key = ''");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    char id[300] = "";
    if (PQntuples(r)) snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!id[0]) return 1;
    room_event *ev = room_store_get_event(c, id, err);
    if (!ev) return -1;
    int ok = fed_acl_content_allows(ev->content, server);
    room_event_free(ev);
    return ok;
}

int fed_check_origin(db_conn *c, const char *room_id, const char *origin, hs_err *err) {
    hs_err miss = {0};
    if (!room_store_room_version(c, room_id, &miss))
        return miss.status == 404 ? hs_err_set(err, 404, "M_NOT_FOUND", "Unknown room %s", room_id)
                                  : (*err = miss, -1);
    int in = fed_server_in_room(c, room_id, origin, err);
    if (in < 0) return -1;
    if (!in) return hs_err_set(err, 403, "M_FORBIDDEN", "Host %s not in room %s", origin, room_id);
    int ok = fed_acl_allows(c, room_id, origin, err);
    if (ok < 0) return -1;
    if (!ok)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                          origin, room_id);
    return 0;
}
