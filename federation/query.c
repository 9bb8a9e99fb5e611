/* query.c — what other servers may ask about our users:
 *
 *   GET /_matrix/federation/v1/query/profile?user_id=…[&field=…]
 *   GET /_matrix/federation/v1/openid/userinfo?access_token=…
 *
 * (/query/directory is served by directory.c; other query types are
 * unknown paths.) */
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/profile.h"
#include "homeserver/http/openid_auth.h"
#include "sender_internal.h"

static int get_profile(hs_req *r, json_t **out, hs_err *err) {
    const char *user_id = hs_req_query(r, "user_id"), *field = hs_req_query(r, "field");
    if (!user_id) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing 'user_id'");
    if (user_id[0] != '@' || !strchr(user_id, ':'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user id");
    if (!fed_user_is_on(user_id, r->srv->cfg->server_name))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "User is not hosted on this homeserver");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *p = client_profile_load(c, user_id, err);
    db_release(r->srv->db, c);
    if (!p) return -1;
    if (field) {
        /* The spec: only that field, and a field the user has not set is
         * left out of a 200 (404 is for a user that does not exist).
         * Synapse asks for avatar_url whenever it invites our users and
         * logged our 404 as a failed request. */
        json_t *v = json_object_get(p, field);
        *out = v && !json_is_null(v) ? json_pack("{s:O}", field, v) : json_object();
        json_decref(p);
        return 200;
    }
    *out = p;
    return 200;
}

/* No X-Matrix here: whoever holds the token (an integration server, say)
 * may learn whose it is, and nothing else. */
static int get_openid_userinfo(hs_req *r, json_t **out, hs_err *err) {
    const char *token = hs_req_query(r, "access_token");
    /* The spec answers this endpoint 200 or 401; Synapse says
     * M_MISSING_TOKEN when there is none (SyTest's 45openid.pl). */
    if (!token) return hs_err_set(err, 401, "M_MISSING_TOKEN", "Access token required");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char *user = hs_openid_token_user(c, token, err);
    db_release(r->srv->db, c);
    if (!user) return -1;
    *out = json_pack("{s:s}", "sub", user);
    free(user);
    return 200;
}

void fed_query_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/query/profile", get_profile, HS_FEDERATION);
    hs_route(rt, "GET", "/_matrix/federation/v1/openid/userinfo", get_openid_userinfo,
             HS_FEDERATION | HS_FED_NOAUTH);
}
