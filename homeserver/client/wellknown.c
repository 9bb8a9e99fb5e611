/* wellknown.c — /.well-known/matrix/{client,server} and /health.
 *
 * Clients derive the homeserver's URL from the user ID's domain through
 * /.well-known/matrix/client; servers find our federation port through
 * /.well-known/matrix/server. Both come from public_baseurl. */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "client.h"

static int get_client(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    *out = json_pack("{s:{s:s}}", "m.homeserver", "base_url", r->srv->cfg->public_baseurl);
    return 200;
}

/* "host:port" of public_baseurl, the port defaulting by scheme. */
static void delegated(const char *url, char *out, size_t n) {
    bool https = !strncmp(url, "https://", 8);
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t len = strcspn(h, "/");
    const char *close = memchr(h, ']', len);
    const char *colon = memchr(close ? close : h, ':', len - (size_t)((close ? close : h) - h));
    if (colon) snprintf(out, n, "%.*s", (int)len, h);
    else snprintf(out, n, "%.*s:%d", (int)len, h, https ? 443 : 80);
}

static int get_server(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    char hostport[512];
    delegated(r->srv->cfg->public_baseurl, hostport, sizeof hostport);
    *out = json_pack("{s:s}", "m.server", hostport);
    return 200;
}

static int get_health(hs_req *r, json_t **out, hs_err *err) {
    (void)out, (void)err;
    r->custom = MHD_create_response_from_buffer(2, "OK", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r->custom, "Content-Type", "text/plain");
    return 200;
}

void client_wellknown_routes(hs_router *rt) {
    hs_route(rt, "GET", "/.well-known/matrix/client", get_client, HS_ANY_LISTENER);
    hs_route(rt, "GET", "/.well-known/matrix/server", get_server, HS_ANY_LISTENER);
    hs_route(rt, "GET", "/health", get_health, HS_ANY_LISTENER);
}
