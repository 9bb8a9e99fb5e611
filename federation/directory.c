/* directory.c — room aliases across servers: GET
 * /_matrix/federation/v1/query/directory?room_alias=… answers for our
 * aliases (the room and the servers to join it through, ours first, as
 * Synapse lists them), and fed_query_alias asks another server about its
 * own. A server the room's server ACL denies gets 403 M_FORBIDDEN, as from
 * the room endpoints: it could not use the answer anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_internal.h"

json_t *fed_alias_servers(db_conn *c, const hs_server *srv, const char *room_id, hs_err *err) {
    json_t *in = fed_servers_in_room(c, room_id, err);
    if (!in) return NULL;
    json_t *servers = json_pack("[s]", srv->cfg->server_name);
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) if (strcmp(json_string_value(s), srv->cfg->server_name))
        json_array_append(servers, s);
    json_decref(in);
    return servers;
}

static int get_query_directory(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT room_id FROM room_aliases WHERE alias = $1");
    const char *alias = hs_req_query(r, "room_alias");
    if (!alias) return hs_err_set(err, 400, "M_MISSING_PARAM", "room_alias is required");
    if (alias[0] != '#' || strcmp(fed_id_domain(alias), r->srv->cfg->server_name) != 0)
        return hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = db_run(c, &q, 1, (const char *[]){alias}, err);
    int rc = -1;
    if (res && PQntuples(res)) {
        const char *room_id = PQgetvalue(res, 0, 0);
        int acl = room_acl_allows(c, room_id, r->origin ? r->origin : "", err);
        json_t *servers = acl > 0 ? fed_alias_servers(c, r->srv, room_id, err) : NULL;
        if (acl == 0)
            hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                       r->origin ? r->origin : "", room_id);
        if (servers) {
            *out = json_pack("{s:s, s:o}", "room_id", room_id, "servers", servers);
            rc = 200;
        }
    } else if (res) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
    }
    PQclear(res);
    db_release(r->srv->db, c);
    return rc;
}

int fed_query_alias(hs_server *srv, const char *alias, char **room_id, json_t **servers,
                    hs_err *err) {
    *room_id = NULL, *servers = NULL;
    const char *dest = fed_id_domain(alias);
    char *ea = fed_escape(alias), *path = NULL;
    if (ea && asprintf(&path, "/_matrix/federation/v1/query/directory?room_alias=%s", ea) < 0)
        path = NULL;
    free(ea);
    long status;
    json_t *resp = NULL;
    int rc = path ? fed_request(srv, dest, "GET", path, NULL, &status, &resp, err) : -1;
    free(path);
    const char *rid = json_string_value(json_object_get(resp, "room_id"));
    json_t *list = json_object_get(resp, "servers");
    if (rc == 0 && (!rid || rid[0] != '!')) {
        rc = hs_err_set(err, 502, "M_UNKNOWN", "%s sent a malformed directory answer", dest);
    } else if (rc == 0) {
        *room_id = strdup(rid);
        *servers = json_array();
        size_t i;
        json_t *s;
        json_array_foreach(list, i, s) if (json_is_string(s)) json_array_append(*servers, s);
    } else if (status == 404) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
    }
    json_decref(resp);
    return rc;
}

void fed_directory_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/query/directory", get_query_directory,
             HS_FEDERATION);
}
