/* versions.c — GET /_matrix/client/versions.
 *
 * A spec version is listed only once everything it requires works here: a
 * client that sees "v1.x" relies on all of it (matrix-js-sdk, for one, turns
 * threads and relations on by it). What is optional and not offered is said
 * so where the spec asks (the OAuth 2.0 API: GET /auth_metadata answers 404
 * M_UNRECOGNIZED and clients use the legacy login). Application services are
 * a separate API (not served yet). */
#include "channels.h"
#include "client.h"

static const char *const supported[] = {
    "r0.0.1", "r0.1.0", "r0.2.0", "r0.3.0", "r0.4.0", "r0.5.0", "r0.6.0", "r0.6.1",
    "v1.1",   "v1.2",   "v1.3",   "v1.4",   "v1.5",   "v1.6",   "v1.7",   "v1.8",
    "v1.9",   "v1.10",  "v1.11",  "v1.12",  "v1.13",  "v1.14",  "v1.15",  "v1.16",
    "v1.17",  "v1.18",  "v1.19",  NULL,
};

/* Unstable features that work here, as clients probe for them. */
static const char *const unstable[] = {
    "org.matrix.simplified_msc3575", /* sliding sync, which Element X requires */
    "org.matrix.msc3814",            /* dehydrated devices */
    NULL,
};

static int get_versions(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    json_t *v = json_array(), *u = json_object();
    for (const char *const *s = supported; *s; s++) json_array_append_new(v, json_string(*s));
    for (const char *const *s = unstable; *s; s++) json_object_set_new(u, *s, json_true());
    /* Forced encryption per preset (Element reads it) and room summaries. */
    json_t *ch = client_channel_unstable_features(r->srv->cfg);
    json_object_update(u, ch);
    json_decref(ch);
    *out = json_pack("{s:o, s:o}", "versions", v, "unstable_features", u);
    return 200;
}

void client_versions_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/versions", get_versions,
             HS_AUTH_OPTIONAL | HS_GUEST | HS_ALLOW_LOCKED);
}
