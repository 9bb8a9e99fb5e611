/* channel_federation.c — channels across servers: the federation request
 * hook (installed by serve.c, see channels.h), and which of our rooms another
 * server may learn about (its /publicRooms and /hierarchy requests). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "channels_internal.h"
#include "rooms/rooms.h"

static _Atomic(client_fed_request_fn) fed_request_hook;

void client_channels_set_federation(client_fed_request_fn fn) { atomic_store(&fed_request_hook, fn); }

char *channel_escape(const char *s) {
    char *out = malloc(3 * strlen(s) + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            *o++ = (char)*p;
        else o += sprintf(o, "%%%02X", *p);
    }
    *o = 0;
    return out;
}

int channel_fed(hs_server *srv, const char *server, const char *method, const char *path_and_query,
                const json_t *body, json_t **out, hs_err *err) {
    client_fed_request_fn fn = atomic_load(&fed_request_hook);
    *out = NULL;
    if (!fn)
        return hs_err_set(err, 502, "M_UNKNOWN", "Failed to reach %s: federation is not running",
                          server);
    long status = 0;
    json_t *resp = NULL;
    int rc = fn(srv, server, method, path_and_query, body, &status, &resp, err);
    if (rc == 0) {
        *out = resp;
        return 0;
    }
    json_decref(resp);
    /* A refusal by the remote (403 for a closed directory, 404 …) is its
     * answer to give; anything else means we could not get one. */
    if (status < 400 || status >= 500)
        hs_err_set(err, 502, "M_UNKNOWN", "Failed to fetch from %s: %s", server, err->msg);
    return -1;
}

int channel_accessible_to_server(db_conn *c, const char *room_id, const char *server_name,
                                 hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT s.join_rule, s.history_visibility, s.join_allow::text, r.room_version,"
        " EXISTS (SELECT 1 FROM current_state m WHERE m.room_id = s.room_id"
        "  AND m.type = 'm.room.member' AND m.membership IN ('join', 'invite')"
        "  AND right(m.state_key, length($2) + 1) = ':' || $2)"
        " FROM room_summaries s JOIN rooms r USING (room_id) WHERE s.room_id = $1");
    static db_stmt allowed = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = ANY($1::text[]) AND type = 'm.room.member'"
        " AND membership = 'join' AND right(state_key, length($2) + 1) = ':' || $2 LIMIT 1");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, server_name}, err);
    if (!r) return -1;
    if (!PQntuples(r)) return PQclear(r), 0;
    const char *rule = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
    const char *hist = PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1);
    const room_version *v = room_version_get(PQgetvalue(r, 0, 3));
    bool knock = v && ((!strcmp(rule, "knock") && v->knock) ||
                       (!strcmp(rule, "knock_restricted") && v->knock_restricted));
    bool restricted = v && ((!strcmp(rule, "restricted") && v->restricted_join) ||
                            (!strcmp(rule, "knock_restricted") && v->knock_restricted));
    int ok = !strcmp(rule, "public") || knock || !strcmp(hist, "world_readable") ||
             PQgetvalue(r, 0, 4)[0] == 't';
    if (!ok && restricted && !PQgetisnull(r, 0, 2)) {
        json_t *allow = json_loads(PQgetvalue(r, 0, 2), 0, NULL);
        const char **ids = calloc(json_array_size(allow) + 1, sizeof *ids);
        size_t i, n = 0;
        json_t *a;
        json_array_foreach(allow, i, a) {
            const char *type = json_string_value(json_object_get(a, "type"));
            const char *room = json_string_value(json_object_get(a, "room_id"));
            if (type && room && !strcmp(type, "m.room_membership")) ids[n++] = room;
        }
        if (n) {
            char *arr = db_text_array(ids, n);
            PGresult *m = db_run(c, &allowed, 2, (const char *[]){arr, server_name}, err);
            ok = m ? PQntuples(m) > 0 : -1;
            PQclear(m);
            free(arr);
        }
        free(ids);
        json_decref(allow);
    }
    PQclear(r);
    return ok;
}

int channel_remote_accessible(db_conn *c, const char *room_id, const json_t *room,
                              const char *user_id) {
    const char *rule = json_string_value(json_object_get(room, "join_rule"));
    if (!rule || !strcmp(rule, "public") || !strcmp(rule, "knock") ||
        !strcmp(rule, "knock_restricted") || json_is_true(json_object_get(room, "world_readable")))
        return 1;
    if (!user_id) return 0;
    hs_err err = {0};
    json_t *allow = json_array();
    size_t i;
    const json_t *id;
    json_array_foreach(json_object_get(room, "allowed_room_ids"), i, id)
        json_array_append_new(allow, json_pack("{s:s, s:O}", "type", "m.room_membership", "room_id", id));
    int in = channel_in_allowed_room(c, allow, user_id, &err);
    json_decref(allow);
    if (in) return in;
    return channel_accessible(c, room_id, user_id, &err);
}

json_t *channel_fed_hierarchy(hs_server *srv, const char *room_id, const json_t *via,
                              bool suggested_only) {
    char path[600], *e = channel_escape(room_id);
    snprintf(path, sizeof path, "/_matrix/federation/v1/hierarchy/%s%s", e,
             suggested_only ? "?suggested_only=true" : "");
    free(e);
    json_t *res = NULL;
    for (size_t i = 0; i < json_array_size(via) && i < 3 && !res; i++) {
        const char *server = json_string_value(json_array_get(via, i));
        hs_err err = {0};
        if (!server || !strcmp(server, srv->cfg->server_name) ||
            channel_fed(srv, server, "GET", path, NULL, &res, &err) < 0)
            res = NULL;
        if (res && !json_is_object(json_object_get(res, "room"))) json_decref(res), res = NULL;
    }
    return res;
}
