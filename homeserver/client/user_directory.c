/* user_directory.c — POST /user_directory/search.
 *
 * Computed live from the rooms' current state, so it is never stale: the
 * searcher finds the users who share a joined room with them and the users
 * joined to public or world-readable rooms this server is in (the spec's
 * minimum), and with
 * user_directory.search_all_users every active non-guest user of this server
 * too (Synapse's option, off by default). As in Synapse, sharing a room with
 * oneself does not count: the searcher is found only in a public room, and
 * never with search_all_users. Display names and avatars are the
 * profile's for our users and the membership event's for remote ones.
 * Matching is case-insensitive on user ID and display name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define DIRECTORY_MAX_LIMIT 50 /* Synapse's cap */

/* $1 searcher, $2 '%term%', $3 'term%', $4 '@term%', $5 limit + 1,
 * $6 't' to include every local user. */
#define VISIBLE_SQL                                                                         \
    "WITH my_rooms AS (SELECT room_id FROM current_state WHERE type = 'm.room.member'"     \
    "  AND state_key = $1 AND membership = 'join'),"                                       \
    " open_rooms AS (SELECT cs.room_id FROM current_state cs JOIN events e USING (event_id)" \
    "  WHERE cs.state_key = '' AND ((cs.type = 'm.room.join_rules' AND"                    \
    "  convert_from(e.json, 'UTF8')::jsonb #>> '{content,join_rule}' = 'public') OR"       \
    "  (cs.type = 'm.room.history_visibility' AND"                                         \
    "  convert_from(e.json, 'UTF8')::jsonb #>> '{content,history_visibility}'"             \
    "  = 'world_readable'))"                                                              \
    /* Only rooms this server is in: the state of a room it left is frozen    \
     * at the leave, and its members would stay findable for ever. */         \
    "  AND EXISTS (SELECT 1 FROM current_state lm JOIN users lu ON lu.user_id = lm.state_key" \
    "   WHERE lm.room_id = cs.room_id AND lm.type = 'm.room.member'"                         \
    "   AND lm.membership = 'join')),"                                                       \
    " visible AS (SELECT cs.state_key AS user_id, cs.event_id FROM current_state cs"       \
    "  WHERE cs.type = 'm.room.member' AND cs.membership = 'join' AND ((cs.room_id IN"     \
    "  (SELECT room_id FROM my_rooms) AND cs.state_key <> $1)"                              \
    "  OR cs.room_id IN (SELECT room_id FROM open_rooms))"                                 \
    "  UNION ALL SELECT user_id, NULL FROM users WHERE $6 AND NOT is_guest),"              \
    " cand AS (SELECT v.user_id,"                                                          \
    "  CASE WHEN u.user_id IS NOT NULL THEN p.displayname ELSE"                            \
    "  max(convert_from(e.json, 'UTF8')::jsonb #>> '{content,displayname}') END AS dn,"    \
    "  CASE WHEN u.user_id IS NOT NULL THEN p.avatar_url ELSE"                             \
    "  max(convert_from(e.json, 'UTF8')::jsonb #>> '{content,avatar_url}') END AS av"      \
    "  FROM visible v LEFT JOIN events e ON e.event_id = v.event_id"                       \
    "  LEFT JOIN users u ON u.user_id = v.user_id"                                         \
    "  LEFT JOIN profiles p ON p.user_id = v.user_id"                                      \
    "  WHERE u.user_id IS NULL OR NOT u.deactivated"                                       \
    "  GROUP BY v.user_id, u.user_id, p.displayname, p.avatar_url)"                        \
    " SELECT user_id, dn, av FROM cand"                                                    \
    " WHERE (lower(user_id) LIKE $2 ESCAPE '\\' OR lower(dn) LIKE $2 ESCAPE '\\')"         \
    "  AND NOT ($6 AND user_id = $1)"                                                      \
    " ORDER BY (lower(dn) LIKE $3 ESCAPE '\\' OR lower(user_id) LIKE $4 ESCAPE '\\') DESC," \
    " (dn IS NOT NULL) DESC, user_id LIMIT $5"

/* term lower-cased with LIKE's wildcards escaped, between pre and post. */
static char *like_pattern(const char *pre, const char *term, const char *post) {
    size_t n = strlen(term);
    char *out = malloc(strlen(pre) + 2 * n + strlen(post) + 1), *o = out;
    if (!out) return NULL;
    o += sprintf(o, "%s", pre);
    for (const char *p = term; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\') *o++ = '\\';
        *o++ = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
    }
    strcpy(o, post);
    return out;
}

static int post_search(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(VISIBLE_SQL);
    const json_t *term = json_object_get(r->json, "search_term");
    const json_t *lim = json_object_get(r->json, "limit");
    if (!term) return hs_err_set(err, 400, "M_MISSING_PARAM", "'search_term' is missing");
    if (!json_is_string(term)) return hs_err_set(err, 400, "M_BAD_JSON", "'search_term' must be a string");
    if (lim && !json_is_integer(lim)) return hs_err_set(err, 400, "M_BAD_JSON", "'limit' must be an integer");
    json_int_t limit = lim ? json_integer_value(lim) : 10;
    if (limit < 0) limit = 0;
    if (limit > DIRECTORY_MAX_LIMIT) limit = DIRECTORY_MAX_LIMIT;
    if (!r->srv->cfg->user_directory_enabled) {
        *out = json_pack("{s:[], s:b}", "results", "limited", 0);
        return 200;
    }
    const char *t = json_string_value(term);
    char *any = like_pattern("%", t, "%"), *prefix = like_pattern("", t, "%"),
         *id_prefix = like_pattern("@", t, "%"), lim1[24];
    snprintf(lim1, sizeof lim1, "%lld", (long long)limit + 1);
    const char *p[] = {r->user_id, any, prefix, id_prefix, lim1,
                       r->srv->cfg->user_directory_search_all_users ? "t" : "f"};
    db_conn *c = db_acquire(r->srv->db, err);
    PGresult *res = c ? db_run(c, &q, 6, p, err) : NULL;
    db_release(r->srv->db, c);
    free(any), free(prefix), free(id_prefix);
    if (!res) return -1;
    json_t *results = json_array();
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++) {
        json_t *u = json_pack("{s:s}", "user_id", PQgetvalue(res, i, 0));
        if (!PQgetisnull(res, i, 1)) json_object_set_new(u, "display_name", json_string(PQgetvalue(res, i, 1)));
        if (!PQgetisnull(res, i, 2)) json_object_set_new(u, "avatar_url", json_string(PQgetvalue(res, i, 2)));
        json_array_append_new(results, u);
    }
    PQclear(res);
    *out = json_pack("{s:o, s:b}", "results", results, "limited", n > limit);
    return 200;
}

void client_user_directory_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/user_directory/search", post_search, HS_AUTH | HS_R0);
}
