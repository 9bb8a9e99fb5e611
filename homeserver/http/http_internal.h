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

#endif
