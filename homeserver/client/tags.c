/* tags.c — GET /user/{userId}/rooms/{roomId}/tags, PUT/DELETE …/tags/{tag}.
 *
 * A room's tags are its m.tag room account data ({"tags": {name: {order}}}),
 * as in Synapse, so /sync delivers them like any room account data. Each
 * change edits that object inside PostgreSQL, so two devices tagging the same
 * room at once both keep their tag. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "jsonb.h"
#include "room_access.h"

#define MAX_TAG_BYTES 255 /* the spec's limit on a tag's name */

static int check_owner(hs_req *r, hs_err *err) {
    if (strcmp(r->params[0], r->user_id) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Cannot change or read tags of other users.");
    return 0;
}

static int get_tags(hs_req *r, json_t **out, hs_err *err) {
    if (check_owner(r, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *v = client_account_data_get(c, r->user_id, r->params[1], "m.tag", err);
    db_release(r->srv->db, c);
    if (!v && err->status != 404) return -1;
    json_t *tags = json_object_get(v, "tags");
    *out = json_pack("{s:o}", "tags", json_is_object(tags) ? json_incref(tags) : json_object());
    json_decref(v);
    hs_err_clear(err);
    return 200;
}

/* The spec's Tag: an object whose "order", when given, is a number (in
 * [0, 1] by the spec's description, which we don't enforce: nothing breaks
 * when a client orders outside it). */
static int check_tag_body(const json_t *body, hs_err *err) {
    const json_t *order = json_object_get(body, "order");
    if (order && (!json_is_number(order) || !isfinite(json_number_value(order))))
        return hs_err_set(err, 400, "M_BAD_JSON", "'order' must be a number");
    return 0;
}

long client_tag_set(hs_server *srv, const char *user_id, const char *room_id, const char *tag,
                    const char *content, hs_err *err) {
    static db_stmt add = DB_STMT(
        "INSERT INTO account_data (stream_id, user_id, room_id, type, content)"
        " VALUES ($1, $2, $3, 'm.tag', jsonb_build_object('tags', jsonb_build_object($4::text, $5::jsonb)))"
        " ON CONFLICT (user_id, room_id, type) DO UPDATE SET stream_id = EXCLUDED.stream_id,"
        " content = account_data.content || jsonb_build_object('tags',"
        "   CASE WHEN jsonb_typeof(account_data.content -> 'tags') = 'object'"
        "   THEN account_data.content -> 'tags' ELSE '{}'::jsonb END"
        "   || jsonb_build_object($4::text, $5::jsonb))");
    return client_account_data_write(srv, user_id, &add, 4,
                                     (const char *[]){user_id, room_id, tag, content}, err);
}

static int put_tag(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[1], *tag = r->params[2];
    if (check_owner(r, err) < 0) return -1;
    if (strlen(tag) > MAX_TAG_BYTES)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "tag parameter's length is over %d bytes",
                          MAX_TAG_BYTES);
    if (check_tag_body(r->json, err) < 0) return -1;
    /* Tagging a room the user never had anything to do with only stores
     * junk (Synapse refuses it the same way). */
    char m[32];
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const char *mem = client_membership(c, room_id, r->user_id, m, sizeof m, err);
    db_release(r->srv->db, c);
    if (!mem) return -1;
    if (!*mem)
        return hs_err_set(err, 403, "M_FORBIDDEN", "User %s has no membership in room %s",
                          r->user_id, room_id);
    char *body = client_jsonb_dump(r->json, err);
    if (!body) return -1;
    long n = client_tag_set(r->srv, r->user_id, room_id, tag, body, err);
    free(body);
    if (n < 0) return -1;
    *out = json_object();
    return 200;
}

static int delete_tag(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt del = DB_STMT(
        "UPDATE account_data SET stream_id = $1,"
        " content = content || jsonb_build_object('tags', (content -> 'tags') - $4::text)"
        " WHERE user_id = $2 AND room_id = $3 AND type = 'm.tag'"
        " AND jsonb_typeof(content -> 'tags') = 'object' AND jsonb_exists(content -> 'tags', $4)");
    if (check_owner(r, err) < 0) return -1;
    /* Removing a tag that isn't there is fine, as in Synapse. */
    if (client_account_data_write(r->srv, r->user_id, &del, 3,
                                  (const char *[]){r->user_id, r->params[1], r->params[2]}, err) < 0)
        return -1;
    *out = json_object();
    return 200;
}

void client_tags_routes(hs_router *rt) {
    const char *one = "/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}";
    hs_route(rt, "GET", "/_matrix/client/v3/user/{userId}/rooms/{roomId}/tags", get_tags,
             HS_AUTH | HS_R0);
    hs_route(rt, "PUT", one, put_tag, HS_AUTH | HS_R0);
    hs_route(rt, "DELETE", one, delete_tag, HS_AUTH | HS_R0);
}
