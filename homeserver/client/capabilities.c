/* capabilities.c — GET /capabilities: what this server lets the user do. */
#include "client.h"
#include "rooms/room_version.h"

static json_t *enabled(bool on) { return json_pack("{s:b}", "enabled", on); }

static int get_capabilities(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    json_t *available = json_object();
    for (const room_version *v = room_versions_all(); v->id; v++)
        json_object_set_new(available, v->id, json_string(v->stable ? "stable" : "unstable"));
    json_t *caps = json_object();
    /* Guests have no password to change, and can't mint login tokens. */
    json_object_set_new(caps, "m.change_password", enabled(!r->is_guest));
    json_object_set_new(caps, "m.room_versions",
                        json_pack("{s:s, s:o}", "default", room_version_default()->id,
                                  "available", available));
    json_object_set_new(caps, "m.set_displayname", enabled(true));
    json_object_set_new(caps, "m.set_avatar_url", enabled(!r->is_guest));
    json_object_set_new(caps, "m.3pid_changes", enabled(false));
    json_object_set_new(caps, "m.get_login_token",
                        enabled(r->srv->cfg->login_via_existing_session && !r->is_guest));
    json_t *fields = enabled(true);
    /* Guests may set their display name and nothing else (profile.c). */
    if (r->is_guest) json_object_set_new(fields, "allowed", json_pack("[s]", "displayname"));
    json_object_set_new(caps, "m.profile_fields", fields);
    /* v1.18: server admins may suspend and lock accounts (account_moderation.c);
     * the spec omits the capability when both would be false. */
    if (r->is_admin)
        json_object_set_new(caps, "m.account_moderation",
                            json_pack("{s:b, s:b}", "suspend", 1, "lock", 1));
    json_object_set_new(caps, "m.forget_forced_upon_leave",
                        enabled(r->srv->cfg->forget_rooms_on_leave));
    *out = json_pack("{s:o}", "capabilities", caps);
    return 200;
}

void client_capabilities_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/capabilities", get_capabilities, HS_AUTH | HS_R0 | HS_GUEST);
}
