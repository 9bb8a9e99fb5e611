/* mutual_rooms.c — GET /_matrix/client/v1/mutual_rooms (v1.19, MSC2666): the
 * rooms the requester and another user are both joined to.
 *
 * The rooms come sorted by room ID (bytewise), in batches of 100 as Synapse
 * sends them; next_batch is the last room ID of a batch in unpadded URL-safe
 * base64 (Synapse's token, so a client may move between the two servers'
 * answers), and `from` resumes after it. A room joined later with a smaller
 * ID than the token is seen by the next request without `from`. */
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/server_name.h"
#include "users.h"

#define BATCH 100
#define TOKEN_MAX 255 /* opaque tokens are at most 255 characters */

typedef struct {
    int n_user_id, n_from;
} param_count;

static enum MHD_Result count_params(void *arg, enum MHD_ValueKind kind, const char *key,
                                    const char *value) {
    (void)kind, (void)value;
    param_count *pc = arg;
    if (!strcmp(key, "user_id")) pc->n_user_id++;
    if (!strcmp(key, "from")) pc->n_from++;
    return MHD_YES;
}

/* The spec's user ID grammar (not the historical one): a lower-case
 * localpart of a-z 0-9 . _ = - / + and a valid server name. */
static bool strict_user_id(const char *u) {
    const char *colon = u[0] == '@' ? strchr(u, ':') : NULL;
    if (!colon || colon == u + 1 || strlen(u) > 255) return false;
    for (const char *p = u + 1; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("._=-/+", *p)))
            return false;
    return hs_server_name_valid(colon + 1);
}

/* The room ID a `from` token names, or NULL with 400 M_INVALID_PARAM. */
static char *decode_from(const char *from, hs_err *err) {
    unsigned char buf[TOKEN_MAX];
    size_t n = 0;
    if (strlen(from) > TOKEN_MAX || hs_b64_decode(from, strlen(from), buf, sizeof buf, &n, true) < 0 ||
        memchr(buf, 0, n)) {
        hs_err_set(err, 400, "M_INVALID_PARAM", "Malformed from token");
        return NULL;
    }
    return strndup((const char *)buf, n);
}

static int get_mutual_rooms(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT a.room_id FROM current_state a JOIN current_state b USING (room_id)"
        " WHERE a.type = 'm.room.member' AND a.state_key = $1 AND a.membership = 'join'"
        "  AND b.type = 'm.room.member' AND b.state_key = $2 AND b.membership = 'join'"
        " ORDER BY a.room_id COLLATE \"C\"");
    param_count pc = {0};
    if (r->conn) MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, count_params, &pc);
    const char *user = hs_req_query(r, "user_id"), *from = hs_req_query(r, "from");
    if (!user) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing user_id query parameter");
    if (pc.n_user_id > 1 || pc.n_from > 1)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Duplicate %s query parameter",
                          pc.n_user_id > 1 ? "user_id" : "from");
    if (!strict_user_id(user))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user_id query parameter");
    if (!strcmp(user, r->user_id))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "You cannot request a list of shared rooms with yourself");
    char *after = from && *from ? decode_from(from, err) : NULL;
    if (from && *from && !after) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    PGresult *res = c ? db_run(c, &q, 2, (const char *[]){r->user_id, user}, err) : NULL;
    if (c) db_release(r->srv->db, c);
    if (!res) return free(after), -1;
    int total = PQntuples(res), i = 0;
    /* Bytewise, as the ORDER BY: skip what the token has already given. */
    while (after && i < total && strcmp(PQgetvalue(res, i, 0), after) <= 0) i++;
    json_t *joined = json_array();
    for (; i < total && json_array_size(joined) < BATCH; i++)
        json_array_append_new(joined, json_string(PQgetvalue(res, i, 0)));
    *out = json_pack("{s:o, s:i}", "joined", joined, "count", total);
    if (i < total) {
        const char *last = json_string_value(json_array_get(joined, BATCH - 1));
        char *tok = hs_b64_encode((const unsigned char *)last, strlen(last), true);
        /* Truncated to the 255 characters of an opaque token; a token that
         * would not move on (room IDs sharing a 191-byte prefix) ends the list. */
        if (strlen(tok) > TOKEN_MAX) tok[TOKEN_MAX] = 0;
        if (!from || strcmp(tok, from)) json_object_set_new(*out, "next_batch", json_string(tok));
        free(tok);
    }
    PQclear(res);
    free(after);
    return 200;
}

void client_mutual_rooms_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v1/mutual_rooms", get_mutual_rooms, HS_AUTH);
}
