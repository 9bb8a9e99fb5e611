/* voip.c — GET /voip/turnServer: TURN credentials for calls.
 *
 * With turn_shared_secret, coturn's REST-API scheme (use-auth-secret):
 *   username = "<expiry, unix seconds>:<user_id>"
 *   password = base64(HMAC-SHA1(secret, username)), standard padded base64
 * which coturn checks with the same secret and refuses after the expiry.
 * Else static turn_username / turn_password. Unconfigured: {} (as Synapse). */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "voip.h"

void client_turn_password(const char *secret, const char *username, char out[29]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    HMAC(EVP_sha1(), secret, (int)strlen(secret), (const unsigned char *)username,
         strlen(username), md, &mdlen);
    /* Padded standard base64, as coturn computes it: 20 bytes -> 28 chars. */
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

static int get_turn_server(hs_req *r, json_t **out, hs_err *err) {
    const cfg *c = r->srv->cfg;
    if (r->is_guest && !c->turn_allow_guests)
        return hs_err_set(err, 403, "M_GUEST_ACCESS_FORBIDDEN", "Guests get no TURN credentials here");
    json_t *uris = json_array();
    for (size_t i = 0; i < c->turn_uris.n; i++) json_array_append_new(uris, json_string(c->turn_uris.v[i]));
    json_int_t ttl = (json_int_t)(c->turn_user_lifetime / 1000);
    if (c->turn_uris.n && c->turn_shared_secret) {
        char user[600], pass[29];
        long long expiry = (hs_now_ms() + c->turn_user_lifetime) / 1000;
        snprintf(user, sizeof user, "%lld:%s", expiry, r->user_id);
        client_turn_password(c->turn_shared_secret, user, pass);
        *out = json_pack("{s:s, s:s, s:o, s:I}", "username", user, "password", pass, "uris", uris,
                         "ttl", ttl);
    } else if (c->turn_uris.n && c->turn_username && c->turn_password) {
        *out = json_pack("{s:s, s:s, s:o, s:I}", "username", c->turn_username, "password",
                         c->turn_password, "uris", uris, "ttl", ttl);
    } else {
        json_decref(uris);
        *out = json_object();
    }
    return 200;
}

void client_voip_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/voip/turnServer", get_turn_server, HS_AUTH | HS_R0 | HS_GUEST);
}
