/* server_keys.c — GET /_matrix/key/v2/server: our signing key, self-signed.
 *
 * Other servers verify our events and requests with this key; the response
 * is signed with the key itself so a notary can vouch for what it saw. */
#include <stdlib.h>

#include "federation.h"
#include "homeserver/core/clock.h"

json_t *fed_own_server_keys(const hs_server *srv, hs_err *err) {
    char *pk = hs_signing_key_public_b64(&srv->key);
    json_t *o = json_pack("{s:s, s:I, s:{s:{s:s}}, s:{}}", "server_name", srv->cfg->server_name,
                          "valid_until_ts", (json_int_t)(hs_now_ms() + FED_KEY_VALIDITY_MS),
                          "verify_keys", srv->key.key_id, "key", pk, "old_verify_keys");
    free(pk);
    if (hs_json_sign(o, srv->cfg->server_name, &srv->key, err) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int get_server_keys(hs_req *r, json_t **out, hs_err *err) {
    *out = fed_own_server_keys(r->srv, err);
    return *out ? 200 : -1;
}

void fed_server_keys_routes(hs_router *rt) {
    /* Canonical on the wire: gomatrixserverlib checks the self-signature
     * against the bytes it received minus "signatures", as Synapse sends them. */
    int f = HS_FEDERATION | HS_FED_NOAUTH | HS_CANONICAL_JSON;
    hs_route(rt, "GET", "/_matrix/key/v2/server", get_server_keys, f);
    /* The key ID in the path was deprecated in r0.6; servers still send it. */
    hs_route(rt, "GET", "/_matrix/key/v2/server/{keyId}", get_server_keys, f);
}
