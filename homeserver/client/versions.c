/* versions.c — GET /_matrix/client/versions.
 *
 * A spec version is listed only once everything it requires works here: a
 * client that sees "v1.x" relies on all of it. Until the Client-Server API is
 * complete the list stays empty rather than promising what isn't there. */
#include "client.h"

static const char *const supported[] = {NULL};

static int get_versions(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)err;
    json_t *v = json_array();
    for (const char *const *s = supported; *s; s++) json_array_append_new(v, json_string(*s));
    *out = json_pack("{s:o, s:{}}", "versions", v, "unstable_features");
    return 200;
}

void client_versions_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/versions", get_versions, HS_AUTH_OPTIONAL);
}
