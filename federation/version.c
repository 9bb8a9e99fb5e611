/* version.c — GET /_matrix/federation/v1/version. */
#include "federation.h"

#ifndef PVYHS_VERSION
#define PVYHS_VERSION "0.1.0"
#endif

static int get_version(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)err;
    *out = json_pack("{s:{s:s, s:s}}", "server", "name", "pvyhs", "version", PVYHS_VERSION);
    return 200;
}

void fed_version_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/federation/v1/version", get_version,
             HS_FEDERATION | HS_FED_AUTH_OPTIONAL); /* signed requests are checked, as Synapse does */
}
