/* http_internal.h — shared between the files of homeserver/http only. */
#ifndef HS_HTTP_INTERNAL_H
#define HS_HTTP_INTERNAL_H

#include "http.h"

/* Queue body (reference stolen) as the JSON response with CORS headers. */
int hs_http_send_json(struct MHD_Connection *c, int status, json_t *body);
/* {"errcode", "error"} for err (new reference). */
json_t *hs_http_error_body(const hs_err *err);
/* Whether the request carries an access token at all. */
bool hs_auth_has_token(hs_req *r);
/* The access-token part of a route's flags, the one place it is enforced:
 * HS_AUTH requires a token, HS_AUTH_OPTIONAL checks one when sent, and a
 * guest's token is refused (403 M_GUEST_ACCESS_FORBIDDEN) on routes without
 * HS_GUEST. 0, or -1 with err. */
int hs_auth_route(hs_req *r, int flags, hs_err *err);

#endif
