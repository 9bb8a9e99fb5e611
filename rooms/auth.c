/* auth.c — room_auth_check: the authorization rules of room versions 1–12,
 * except membership (auth_membership.c) and power levels (auth_power.c);
 * plus the auth events selection and the checks on an event's auth events.
 *
 * Rule numbers in messages are those of room version 12's list; the rules
 * of older versions are the same checks under other numbers. The hot path
 * (a message from a joined member) costs three lookups and a few jansson
 * hash lookups: nothing is allocated or canonicalised. */
#include <string.h>

#include "auth_internal.h"
#include "event_internal.h"

static bool eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

int room_auth_fetch(room_auth *a, const char *type, const char *state_key,
                    const room_event **out) {
    const room_event *e = a->lookup(a->ctx, type, state_key);
    *out = e;
    if (e && !eq(e->room_id, a->ev->room_id))
        return ROOM_AUTH_REJECT(a, "3.5: state event %s is in another room", e->event_id);
    return 0;
}

int room_auth_membership(room_auth *a, const char *user, const char **out) {
    const room_event *m;
    *out = NULL;
    if (!user || room_auth_fetch(a, "m.room.member", user, &m)) return user ? -1 : 0;
    *out = m ? m->membership : NULL;
    return 0;
}

/* ---- rule 1: the create event ----------------------------------------- */

static int check_additional_creators(room_auth *a, const json_t *list) {
    if (!json_is_array(list)) return ROOM_AUTH_REJECT(a, "1.4: additional_creators is not an array");
    size_t i;
    json_t *u;
    json_array_foreach(list, i, u) {
        const char *s = json_is_string(u) ? json_string_value(u) : NULL;
        if (!s || strlen(s) != json_string_length(u) || !room_valid_user_id(s, strlen(s)))
            return ROOM_AUTH_REJECT(a, "1.4: additional_creators[%zu] is not a user ID", i);
    }
    return 0;
}

static int auth_create(room_auth *a) {
    const room_event *ev = a->ev;
    if (ev->n_prev) return ROOM_AUTH_REJECT(a, "1.1: create event has prev_events");
    if (a->v->hydra) {
        if (json_object_get(ev->json, "room_id"))
            return ROOM_AUTH_REJECT(a, "1.2: create event has a room_id");
    } else if (!eq(room_id_domain(ev->room_id), room_id_domain(ev->sender))) {
        return ROOM_AUTH_REJECT(a, "1.2: room ID domain differs from the sender's");
    }
    json_t *rv = json_object_get(ev->content, "room_version");
    if (rv && !room_version_get(room_json_str(ev->content, "room_version")))
        return ROOM_AUTH_REJECT(a, "1.3: unknown room_version");
    if (!a->v->implicit_room_creator && !json_object_get(ev->content, "creator"))
        return ROOM_AUTH_REJECT(a, "1.4: create event has no creator");
    json_t *extra = json_object_get(ev->content, "additional_creators");
    if (a->v->hydra && extra) return check_additional_creators(a, extra);
    return 0;
}

/* ---- rules 2–4: which room, which create event ------------------------- */

/* v12 3.2: the create event is implied by the room ID and must not be cited. */
static bool cites_create(const room_event *ev) {
    for (size_t i = 0; i < ev->n_auth; i++)
        if (ev->auth_events[i][0] == '$' && strcmp(ev->auth_events[i] + 1, ev->room_id + 1) == 0)
            return true;
    return false;
}

static int check_room(room_auth *a) {
    if (room_auth_fetch(a, "m.room.create", "", &a->create) ||
        room_auth_fetch(a, "m.room.power_levels", "", &a->power))
        return -1;
    if (!a->create) return ROOM_AUTH_REJECT(a, "2: no m.room.create event in the state");
    if (a->v->hydra && a->create->rejected)
        return ROOM_AUTH_REJECT(a, "2: the room's create event was rejected");
    if (a->v->hydra && cites_create(a->ev))
        return ROOM_AUTH_REJECT(a, "3.2: auth_events must not include the create event");
    /* 4: m.federate false keeps other servers out. */
    json_t *fed = json_object_get(a->create->content, "m.federate");
    if (json_is_false(fed) &&
        !eq(room_id_domain(a->ev->sender), room_id_domain(a->create->sender)))
        return ROOM_AUTH_REJECT(a, "4: room does not federate");
    return 0;
}

/* ---- the remaining rules ----------------------------------------------- */

/* v1–v5 rule 4: only a server may set its own aliases. */
static int auth_aliases(room_auth *a) {
    if (!a->ev->state_key) return ROOM_AUTH_REJECT(a, "aliases: no state_key");
    if (!eq(a->ev->state_key, room_id_domain(a->ev->sender)))
        return ROOM_AUTH_REJECT(a, "aliases: state_key is not the sender's domain");
    return 0;
}

/* v1–v2 rule 11; later versions check redactions when applying them. */
static int auth_redaction_v1(room_auth *a, long long me) {
    if (me >= room_pl_named(a->v, a->power, "redact", 50)) return 0;
    /* No target: nothing to redact, so nothing to forbid (Synapse). */
    if (!a->ev->redacts) return 0;
    if (eq(room_id_domain(a->ev->redacts), room_id_domain(a->ev->event_id))) return 0;
    return ROOM_AUTH_REJECT(a, "11: cannot redact another server's event");
}

static int auth_other(room_auth *a) {
    const room_event *ev = a->ev;
    const char *me_m;
    if (room_auth_membership(a, ev->sender, &me_m)) return -1;
    if (!eq(me_m, "join")) return ROOM_AUTH_REJECT(a, "6: sender %s is not joined", ev->sender);
    long long me = room_pl_user(a->v, a->create, a->power, ev->sender);
    if (eq(ev->type, "m.room.third_party_invite")) {
        if (me >= room_pl_named(a->v, a->power, "invite", 0)) return 0;
        return ROOM_AUTH_REJECT(a, "7: sender's power is below the invite level");
    }
    long long need = room_pl_required(a->v, a->power, ev->type, ev->state_key != NULL);
    if (need > me)
        return ROOM_AUTH_REJECT(a, "8: %s needs power %lld, sender has %lld", ev->type, need, me);
    if (ev->state_key && ev->state_key[0] == '@' && !eq(ev->state_key, ev->sender))
        return ROOM_AUTH_REJECT(a, "9: state_key %s belongs to another user", ev->state_key);
    if (eq(ev->type, "m.room.power_levels")) return room_auth_power_levels(a);
    if (a->v->event_format == ROOM_EVFMT_V1 && eq(ev->type, "m.room.redaction"))
        return auth_redaction_v1(a, me);
    return 0;
}

bool room_redaction_applies(const room_event *redaction, const room_event *target,
                            room_state_lookup lookup, void *ctx) {
    if (!redaction || !target || !eq(redaction->redacts, target->event_id) ||
        !eq(redaction->room_id, target->room_id))
        return false;
    const room_version *v = redaction->ver;
    if (v->event_format == ROOM_EVFMT_V1) return true; /* rule 11 was the check */
    const room_event *create = lookup ? lookup(ctx, "m.room.create", "") : NULL;
    const room_event *power = lookup ? lookup(ctx, "m.room.power_levels", "") : NULL;
    if (room_pl_user(v, create, power, redaction->sender) >= room_pl_named(v, power, "redact", 50))
        return true;
    return eq(room_id_domain(redaction->sender), room_id_domain(target->sender));
}

int room_auth_check(const room_event *ev, room_state_lookup lookup, void *ctx, hs_err *err) {
    if (!ev || !ev->ver) return hs_err_set(err, 500, "M_UNKNOWN", "room_auth_check: no event");
    room_auth a = {.ev = ev, .v = ev->ver, .lookup = lookup, .ctx = ctx, .err = err};
    /* Not an auth rule of the spec: Synapse's size check, which rejects
     * (rather than drops) what older Synapse versions let into a room. */
    if (ev->oversized)
        return hs_err_set(err, 403, "M_FORBIDDEN", "'%s' is longer than 255 bytes", ev->oversized);
    if (eq(ev->type, "m.room.create")) return auth_create(&a);
    if (!lookup) return hs_err_set(err, 500, "M_UNKNOWN", "room_auth_check: no state lookup");
    if (check_room(&a)) return -1;
    if (a.v->special_case_aliases_auth && eq(ev->type, "m.room.aliases")) return auth_aliases(&a);
    if (eq(ev->type, "m.room.member")) return room_auth_member(&a);
    return auth_other(&a);
}
