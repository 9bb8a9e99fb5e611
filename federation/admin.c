/* admin.c — a debugging hook for server admins: send one signed federation
 * request and see what came back.
 *
 *   POST /_pvyhs/admin/v1/federation/request
 *   {"destination": "example.org", "method": "GET",
 *    "path": "/_matrix/federation/v1/version", "content": {...}}
 *   -> 200 {"status": 200, "body": {...}}
 *
 * It goes through everything a real request does (whitelist, discovery,
 * TLS, IP policy, X-Matrix), which is what an admin debugging federation
 * wants to see and what the integration tests drive. Only server admins may
 * use it, and only towards /_matrix/ paths. */
#include <string.h>

#include "federation.h"

static int post_request(hs_req *r, json_t **out, hs_err *err) {
    if (!r->is_admin) return hs_err_set(err, 403, "M_FORBIDDEN", "You are not a server admin");
    const char *dest = json_string_value(json_object_get(r->json, "destination"));
    const char *method = json_string_value(json_object_get(r->json, "method"));
    const char *path = json_string_value(json_object_get(r->json, "path"));
    json_t *content = json_object_get(r->json, "content");
    if (!method) method = "GET";
    if (!dest || !path || strncmp(path, "/_matrix/", 9))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "destination and a path starting with /_matrix/ are required");
    if (strcmp(method, "GET") && strcmp(method, "POST") && strcmp(method, "PUT") &&
        strcmp(method, "DELETE"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "method must be GET, POST, PUT or DELETE");
    if (content && !json_is_object(content))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "content must be an object");
    long status = 0;
    json_t *body = NULL;
    int rc = fed_request(r->srv, dest, method, path, content, &status, &body, err);
    if (rc < 0 && status == 0) return -1; /* no answer: our error says why */
    *out = json_pack("{s:I, s:o}", "status", (json_int_t)status, "body", body ? body : json_null());
    return 200;
}

void fed_admin_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_pvyhs/admin/v1/federation/request", post_request, HS_AUTH);
}
