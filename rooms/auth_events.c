/* auth_events.c — the auth events selection (server-server API) and rule 3,
 * the checks on the events an event cites as its auth events. */
#include <string.h>

#include "auth.h"
#include "event_internal.h"

#define MAX_SELECTED 8

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static size_t add(room_state_key *out, size_t n, size_t max, const char *type, const char *sk) {
    if (!sk) return n;
    for (size_t i = 0; i < n; i++)
        if (eq(out[i].type, type) && eq(out[i].state_key, sk)) return n;
    if (n >= max) return n;
    out[n].type = type;
    out[n].state_key = sk;
    return n + 1;
}

/* The extra pairs of a membership change. */
static size_t add_member_keys(const room_version *v, const json_t *event, room_state_key *out,
                              size_t n, size_t max) {
    json_t *content = json_object_get(event, "content");
    const char *membership = room_json_str(content, "membership");
    n = add(out, n, max, "m.room.member", room_json_str(event, "state_key"));
    if (eq(membership, "join") || eq(membership, "invite") || eq(membership, "knock"))
        n = add(out, n, max, "m.room.join_rules", "");
    if (eq(membership, "invite")) {
        json_t *signed_ = json_object_get(json_object_get(content, "third_party_invite"), "signed");
        n = add(out, n, max, "m.room.third_party_invite", room_json_str(signed_, "token"));
    }
    if (eq(membership, "join") && v->restricted_join)
        n = add(out, n, max, "m.room.member",
                room_json_str(content, "join_authorised_via_users_server"));
    return n;
}

size_t room_auth_types_for_event(const room_version *v, const json_t *event, room_state_key *out,
                                 size_t max) {
    const char *type = room_json_str(event, "type");
    if (!v || !type || strcmp(type, "m.room.create") == 0) return 0;
    size_t n = 0;
    /* From v12 the room ID names the create event, so it is not cited. */
    if (!v->hydra) n = add(out, n, max, "m.room.create", "");
    n = add(out, n, max, "m.room.power_levels", "");
    n = add(out, n, max, "m.room.member", room_json_str(event, "sender"));
    if (strcmp(type, "m.room.member") == 0) n = add_member_keys(v, event, out, n, max);
    return n;
}

static bool selected(const room_state_key *want, size_t n, const room_event *e) {
    for (size_t i = 0; i < n; i++)
        if (eq(want[i].type, e->type) && eq(want[i].state_key, e->state_key)) return true;
    return false;
}

#define REJECT(...) hs_err_set(err, 403, "M_FORBIDDEN", __VA_ARGS__)

int room_auth_check_auth_events(const room_event *ev, const room_event *const *auth, size_t n,
                                hs_err *err) {
    room_state_key want[MAX_SELECTED];
    size_t n_want = room_auth_types_for_event(ev->ver, ev->json, want, MAX_SELECTED);
    bool have_create = false;
    for (size_t i = 0; i < n; i++) {
        const room_event *e = auth[i];
        if (!e->state_key) return REJECT("3.2: auth event %s is not a state event", e->event_id);
        for (size_t j = 0; j < i; j++)
            if (eq(auth[j]->type, e->type) && eq(auth[j]->state_key, e->state_key))
                return REJECT("3.1: two auth events for (%s, %s)", e->type, e->state_key);
        if (!selected(want, n_want, e))
            return REJECT("3.2: auth event (%s, %s) is not one the selection allows", e->type,
                          e->state_key);
        if (e->rejected) return REJECT("3.3: auth event %s was rejected", e->event_id);
        if (!eq(e->room_id, ev->room_id))
            return REJECT("3.5: auth event %s is in another room", e->event_id);
        have_create |= room_is_create(e->type, e->state_key);
    }
    if (!ev->ver->hydra && !have_create && !eq(ev->type, "m.room.create"))
        return REJECT("3.4: no m.room.create among the auth events");
    return 0;
}
