/* membership.c — the resident side of the make_* / send_* handshakes that
 * join.c, leave.c and knock.c share, and the stripped state invites and
 * knocks carry.
 *
 * make_*: a template of the member event, built on our forward extremities
 * and current state exactly as one of our own events would be, returned
 * only if the auth rules would let it in now. send_*: the event the other
 * server finished and signed, held to what it claims to be (room, event ID,
 * type, membership, a user of the calling server acting on themselves),
 * checked on receipt like any PDU (the room's Policy Server included),
 * and stored only when accepted (403 otherwise, so the caller can tell its
 * user). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "rooms/state_lookup.h"
#include "rooms_internal.h"

/* The room must be one we are in, and its ACL must let origin in. */
static const room_version *resident_room(db_conn *c, const hs_server *srv, const char *room_id,
                                         const char *origin, hs_err *err) {
    hs_err miss = {0};
    const room_version *v = room_store_room_version(c, room_id, &miss);
    int in = v ? fed_server_in_room(c, room_id, srv->cfg->server_name, err) : 0;
    if (in < 0) return NULL;
    if (!v || !in) {
        if (miss.status && miss.status != 404) return *err = miss, NULL;
        return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown room %s", room_id), NULL;
    }
    int ok = room_acl_allows(c, room_id, origin, err);
    if (ok < 0) return NULL;
    if (!ok)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                          origin, room_id),
               NULL;
    return v;
}

/* ver=…: the versions the caller supports; the spec's default is "1". */
static bool version_supported(const hs_req *r, const room_version *v) {
    char *vers[32];
    size_t n = fed_query_values(r->uri, "ver", vers, 32);
    bool ok = n == 0 && !strcmp(v->id, "1");
    for (size_t i = 0; i < n; i++) ok |= !strcmp(vers[i], v->id);
    fed_strv_free(vers, n);
    return ok;
}

/* Would the auth rules let the template in against the current state? */
static int template_allowed(db_conn *c, const hs_server *srv, const room_version *v,
                            const json_t *tmpl, hs_err *err) {
    json_t *copy = json_deep_copy(tmpl);
    room_event *ev = NULL;
    int rc = -1;
    if (room_event_finish(v, copy, srv->cfg->server_name, &srv->key, err) == 0 &&
        (ev = room_event_parse(v, copy, err))) {
        room_lookup l = {.c = c, .room_id = ev->room_id, .current = true};
        rc = room_auth_check(ev, room_lookup_get, &l, err);
        if (l.failed) *err = l.err, rc = -1;
        room_lookup_clear(&l);
    }
    room_event_free(ev);
    json_decref(copy);
    return rc;
}

/* While our state of the room is partial we can neither give a joining or
 * knocking server the room's state nor check its event against all of it:
 * 404, as if we were not in the room (Synapse; MSC3706). 1 refused, 0 not,
 * -1 error. */
static int refuse_while_partial(db_conn *c, const char *room_id, const char *membership,
                                const char *endpoint, hs_err *err) {
    if (strcmp(membership, "join") != 0 && strcmp(membership, "knock") != 0) return 0;
    int partial = fed_room_is_partial(c, room_id, err);
    if (partial <= 0) return partial;
    hs_err_set(err, 404, "M_NOT_FOUND",
               "Unable to handle /%s_%s right now; this server is not fully joined", endpoint,
               membership);
    return 1;
}

int fed_make_membership(hs_req *r, const char *membership, json_t *content, bool check_ver,
                        json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *user_id = r->params[1];
    if (!fed_user_of(user_id, r->origin))
        return hs_err_set(err, 403, "M_FORBIDDEN", "%s is not a user of %s", user_id, r->origin);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const room_version *v = resident_room(c, r->srv, room_id, r->origin, err);
    json_t *tmpl = NULL;
    int rc = -1;
    if (v && check_ver && !version_supported(r, v)) {
        *out = json_pack(
            "{s:s, s:s, s:s}", "errcode", "M_INCOMPATIBLE_ROOM_VERSION", "error",
            "Your homeserver does not support the features required to interact with this room",
            "room_version", v->id);
        rc = 400;
    } else if (v && refuse_while_partial(c, room_id, membership, "make", err) != 0) {
        /* err says why */
    } else if (v && !strcmp(membership, "knock") && !v->knock) {
        hs_err_set(err, 403, "M_FORBIDDEN", "This room version does not support knocking");
    } else if (v && (strcmp(membership, "join") ||
                     fed_restricted_join(c, r->srv, room_id, user_id, content, err) == 0)) {
        json_t *proto = json_pack("{s:s, s:s, s:s, s:O}", "type", "m.room.member", "state_key",
                                  user_id, "sender", user_id, "content", content);
        tmpl = room_event_template(c, v, room_id, proto, err);
        json_decref(proto);
        if (tmpl) json_object_set_new(tmpl, "origin", json_string(r->srv->cfg->server_name));
        if (tmpl && template_allowed(c, r->srv, v, tmpl, err) == 0) {
            *out = json_pack("{s:s, s:O}", "room_version", v->id, "event", tmpl);
            rc = 200;
        }
    }
    json_decref(tmpl);
    db_release(r->srv->db, c);
    return rc;
}

/* The claims of a send_* event, per the spec's list. */
static int check_claims(const hs_req *r, const room_event *ev, const char *membership,
                        hs_err *err) {
    if (strcmp(ev->event_id, r->params[1]) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "The event's ID is %s, not %s", ev->event_id,
                          r->params[1]);
    if (strcmp(ev->room_id, r->params[0]) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "The event is not of room %s", r->params[0]);
    if (strcmp(ev->type, "m.room.member") != 0 || !ev->membership ||
        strcmp(ev->membership, membership))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Not a %s event", membership);
    if (!fed_user_of(ev->sender, r->origin))
        return hs_err_set(err, 403, "M_FORBIDDEN", "The sender is not a user of %s", r->origin);
    if (!ev->state_key || strcmp(ev->state_key, ev->sender) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "The state_key must be the sender");
    return 0;
}

/* A join authorised by one of our users carries our signature too (spec:
 * added before the event is persisted or sent on). */
static int sign_if_authorised_here(const hs_server *srv, const room_version *v,
                                   const room_event *ev, json_t *json, hs_err *err) {
    const char *via =
        json_string_value(json_object_get(ev->content, "join_authorised_via_users_server"));
    if (!v->restricted_join || strcmp(ev->membership, "join") || !via ||
        !fed_user_of(via, srv->cfg->server_name))
        return 0;
    return fed_event_sign(srv, v, json, err);
}

int fed_send_membership(hs_req *r, const char *membership, room_event **ev_out,
                        room_state_map **state_before, hs_err *err) {
    *ev_out = NULL, *state_before = NULL;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const room_version *v = resident_room(c, r->srv, r->params[0], r->origin, err);
    if (v && refuse_while_partial(c, r->params[0], membership, "send", err) != 0) v = NULL;
    db_release(r->srv->db, c);
    if (!v) return -1;
    json_t *json = json_copy(r->json);
    json_object_del(json, "unsigned");
    room_event *parsed = room_event_parse(v, json, err), *ev = NULL;
    int rc = parsed && check_claims(r, parsed, membership, err) == 0 &&
                     sign_if_authorised_here(r->srv, v, parsed, json, err) == 0
                 ? 0
                 : -1;
    if (rc == 0 && !(ev = fed_event_verify(r->srv, v, json, err))) {
        fed_verify_error(err);
        rc = -1;
    }
    room_event_free(parsed);
    json_decref(json);
    if (rc == 0)
        rc = fed_ensure_events(r->srv, r->origin, v, ev->room_id, ev->auth_events, ev->n_auth, err);
    if (rc == 0) rc = fed_state_before(r->srv, r->origin, ev, true, state_before, err);
    /* Received over federation like any PDU: in a room with a Policy
     * Server, an event it will not sign is soft-failed, which here (nothing
     * stored unless accepted) is a 403 the other server's user sees. */
    if (rc == 0) rc = fed_policy_check_incoming(r->srv, ev, err);
    if (rc == 0) rc = fed_persist_event(r->srv, ev, *state_before, true, r->origin, NULL, err);
    if (rc < 0) {
        room_event_free(ev);
        room_state_map_free(*state_before);
        *state_before = NULL;
        return -1;
    }
    *ev_out = ev;
    return 0;
}

json_t *fed_stripped_state_pdus(db_conn *c, const room_state_map *state, hs_err *err) {
    /* Synapse's room_prejoin_state, and m.room.guest_access: an invited
     * guest's server may then let them join (guest_rooms.h). */
    static const char *const keep[] = {
        "m.room.create",          "m.room.join_rules", "m.room.name",  "m.room.avatar",
        "m.room.canonical_alias", "m.room.encryption", "m.room.topic", "m.room.guest_access",
        NULL};
    const char *ids[9];
    size_t n = 0;
    for (const char *const *t = keep; *t; t++) {
        const char *id = room_state_map_get(state, *t, "");
        if (id) ids[n++] = id;
    }
    json_t *out = json_array();
    if (fed_pdus_for_server(c, NULL, ids, n, false, out, err) < 0) return json_decref(out), NULL;
    return out;
}

json_t *fed_strip_for_clients(const json_t *pdus) {
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(pdus, i, e) {
        const json_t *type = json_object_get(e, "type"), *sk = json_object_get(e, "state_key");
        const json_t *content = json_object_get(e, "content"),
                     *sender = json_object_get(e, "sender");
        if (!json_is_string(type) || !json_is_string(sk) || !json_is_object(content) ||
            !json_is_string(sender))
            continue;
        json_t *s = json_pack("{s:O, s:O, s:O, s:O}", "type", type, "state_key", sk, "content",
                              content, "sender", sender);
        /* The create event comes as a whole PDU (v1.16, MSC4311): clients
         * get its client fields too. */
        if (!strcmp(json_string_value(type), "m.room.create"))
            for (const char *const *k = (const char *const[]){"origin_server_ts", "event_id",
                                                               "room_id", NULL};
                 *k; k++)
                if (json_object_get(e, *k)) json_object_set(s, *k, json_object_get(e, *k));
        json_array_append_new(out, s);
    }
    return out;
}
