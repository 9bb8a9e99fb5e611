/* account.c — who the access token belongs to. */
#include "client.h"

static int get_whoami(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    *out = json_pack("{s:s, s:s, s:b}", "user_id", r->user_id, "device_id", r->device_id,
                     "is_guest", r->is_guest);
    return 200;
}

void client_account_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/account/whoami", get_whoami, HS_AUTH | HS_R0);
}
