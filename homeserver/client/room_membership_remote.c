/* room_membership_remote.c — joins, knocks and leaves that another server
 * must make for us: the room has no member of ours (we were never in it,
 * or everyone left), so the event is built through a server that is in it
 * (remote_rooms.h). room_membership.c asks here first.
 *
 * Where to ask, in order: the servers the client names (?via=, and the
 * older ?server_name=), the servers an alias's directory gave, then whoever
 * invited the user and the room ID's own server. */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "remote_rooms.h"
#include "room_membership_remote.h"

typedef struct via_ctx {
    json_t *servers;
} via_ctx;

static enum MHD_Result collect_via(void *arg, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    via_ctx *v = arg;
    if (value && *value && (!strcmp(key, "via") || !strcmp(key, "server_name")))
        json_array_append_new(v->servers, json_string(value));
    return MHD_YES;
}

static json_t *candidates(hs_req *r, const client_remote_rooms *h, const char *room_id,
                          const json_t *extra) {
    via_ctx v = {json_array()};
    if (r->conn) MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_via, &v);
    if (extra) json_array_extend(v.servers, (json_t *)extra);
    json_t *more = h->join_candidates ? h->join_candidates(r->srv, r->user_id, room_id) : NULL;
    if (more) json_array_extend(v.servers, more);
    json_decref(more);
    /* Only with no server to ask, the room ID's own (before v12 it names
     * the creator's server): the servers a client names are the ones it
     * wants asked (Complement's TestRestrictedRoomsRemoteJoinFailOver
     * expects a join through a server that cannot grant it to fail). */
    const char *colon = strchr(room_id, ':');
    if (!json_array_size(v.servers) && colon && colon[1])
        json_array_append_new(v.servers, json_string(colon + 1));
    return v.servers;
}

void client_join_content_from_body(const json_t *body, json_t *content) {
    static const char *const reserved[] = {"membership", "third_party_signed",
                                           "join_authorised_via_users_server", "reason", NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        bool skip = false;
        for (const char *const *x = reserved; *x && !skip; x++) skip = !strcmp(k, *x);
        if (!skip) json_object_set(content, k, v);
    }
}

int client_room_local_or_remote(hs_req *r, const char *room_id, hs_err *err) {
    if (!client_remote_rooms_get()) return 0;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int in = client_room_has_local_member(c, r->srv, room_id, err);
    db_release(r->srv->db, c);
    return in < 0 ? -1 : !in;
}

int client_room_remote_membership(hs_req *r, const char *membership, const char *room_id,
                                  const json_t *extra_servers, hs_err *err) {
    const client_remote_rooms *h = client_remote_rooms_get();
    if (!h || !h->join)
        return hs_err_set(err, 404, "M_NOT_FOUND", "No known servers to %s %s through", membership,
                          room_id);
    const json_t *reason = json_object_get(r->json, "reason");
    if (reason && !json_is_string(reason))
        return hs_err_set(err, 400, "M_BAD_JSON", "'reason' must be a string");
    json_t *content = json_pack("{s:s}", "membership", membership);
    if (reason) json_object_set(content, "reason", (json_t *)reason);
    db_conn *c = !strcmp(membership, "join") ? db_acquire(r->srv->db, err) : NULL;
    int rc = strcmp(membership, "join") ? 0
             : c                        ? client_profile_fill_member(c, r->user_id, content, err)
                                        : -1;
    db_release(r->srv->db, c);
    if (rc == 0 && !strcmp(membership, "join")) client_join_content_from_body(r->json, content);
    json_t *servers = rc == 0 ? candidates(r, h, room_id, extra_servers) : NULL;
    size_t n = json_array_size(servers);
    const char **list = calloc(n + 1, sizeof *list);
    for (size_t i = 0; list && i < n; i++) list[i] = json_string_value(json_array_get(servers, i));
    if (rc == 0)
        rc = list ? h->join(r->srv, membership, r->user_id, room_id, list, n, content, err) : -1;
    free(list);
    json_decref(servers);
    json_decref(content);
    return rc;
}

int client_room_remote_join_through(hs_req *r, const char *room_id, const json_t *servers,
                                    const json_t *content, hs_err *err) {
    const client_remote_rooms *h = client_remote_rooms_get();
    size_t n = json_array_size(servers);
    if (!h || !h->join || !n)
        return hs_err_set(err, 404, "M_NOT_FOUND", "No known servers to join %s through", room_id);
    const char **list = calloc(n + 1, sizeof *list);
    if (!list) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    for (size_t i = 0; i < n; i++) list[i] = json_string_value(json_array_get(servers, i));
    int rc = h->join(r->srv, "join", r->user_id, room_id, list, n, content, err);
    free(list);
    return rc;
}

int client_room_remote_leave(hs_req *r, const char *room_id, hs_err *err) {
    const client_remote_rooms *h = client_remote_rooms_get();
    if (!h || !h->leave) return 0;
    const json_t *reason = json_object_get(r->json, "reason");
    if (reason && !json_is_string(reason))
        return hs_err_set(err, 400, "M_BAD_JSON", "'reason' must be a string");
    json_t *content = json_pack("{s:s}", "membership", "leave");
    if (reason) json_object_set(content, "reason", (json_t *)reason);
    int rc = h->leave(r->srv, r->user_id, room_id, content, err);
    json_decref(content);
    return rc;
}

char *client_room_resolve_remote_alias(hs_req *r, const char *alias, json_t **servers,
                                       hs_err *err) {
    const client_remote_rooms *h = client_remote_rooms_get();
    char *room_id = NULL;
    *servers = NULL;
    if (!h || !h->alias) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Room alias %s not found", alias);
        return NULL;
    }
    if (h->alias(r->srv, alias, &room_id, servers, err) < 0) return NULL;
    return room_id;
}
