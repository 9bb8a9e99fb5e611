/* federation.h — the Server-Server API. */
#ifndef FED_FEDERATION_H
#define FED_FEDERATION_H

#include "homeserver/http/http.h"

/* Register every federation and key-server route. */
void fed_routes(hs_router *rt);

void fed_server_keys_routes(hs_router *rt);
void fed_version_routes(hs_router *rt);

/* How long our published key response stays valid (Synapse's default: 1 day). */
#define FED_KEY_VALIDITY_MS (24LL * 3600 * 1000)

/* Our own signed key response, as GET /_matrix/key/v2/server serves it. */
json_t *fed_own_server_keys(const hs_server *srv, hs_err *err);

#endif
