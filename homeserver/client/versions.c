/* versions.c — GET /_matrix/client/versions.
 *
 * A spec version is listed only once everything it requires works here: a
 * client that sees "v1.x" relies on all of it. Until the Client-Server API is
 * complete the list stays empty rather than promising what isn't there. */
#include "client.h"

static const char *const supported[] = {NULL};

/* Unstable features that work here, as clients probe for them. */
static const char *const unstable[] = {
    "org.matrix.simplified_msc3575", /* sliding sync, which Element X requires */
    "org.matrix.msc3814",            /* dehydrated devices */
    NULL,
};

static int get_versions(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)err;
    json_t *v = json_array(), *u = json_object();
    for (const char *const *s = supported; *s; s++) json_array_append_new(v, json_string(*s));
    for (const char *const *s = unstable; *s; s++) json_object_set_new(u, *s, json_true());
    *out = json_pack("{s:o, s:o}", "versions", v, "unstable_features", u);
    return 200;
}

void client_versions_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/versions", get_versions, HS_AUTH_OPTIONAL);
}
