/* server_acl.c — the m.room.server_acl decision (spec: "Server Access Control
 * Lists"): whether a room's current ACL lets a server in. Federation checks
 * the servers calling its room endpoints with it; the directory and
 * /hierarchy answers for other servers leave out the rooms that deny them. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "homeserver/core/server_name.h"
#include "server_acl.h"
#include "store.h"

/* '*' any run of characters, '?' one character; nothing else is special. */
bool room_acl_glob(const char *g, const char *h) {
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
                                       room_acl_glob(json_string_value(g), host)) return true;
    return false;
}

/* The spec's order: IP literals (when refused), then deny, then allow. */
bool room_acl_content_allows(const json_t *content, const char *server) {
    char host[256];
    int port, family;
    if (hs_server_name_parse(server, host, sizeof host, &port, &family) < 0) return false;
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

int room_acl_allows(db_conn *c, const char *room_id, const char *server, hs_err *err) {
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
    int ok = room_acl_content_allows(ev->content, server);
    room_event_free(ev);
    return ok;
}

