/* third_party_invite.c — PUT /_matrix/federation/v1/exchange_third_party_invite/{roomId}.
 *
 * A user was invited to a room of ours by a third-party identifier (an
 * m.room.third_party_invite event, whose state_key is the token), bound it
 * at the identity server, and the identity server told their server
 * (/3pid/onbind), which now asks us, a server in the room, to turn the
 * invite into a real one: the partial m.room.member it sends carries the
 * identity server's signed {mxid, token}. As Synapse does, we build the
 * event on the room's current state with the display name of the
 * third-party invite, check it with the auth rules (which verify the
 * signature against the invite's public keys), have the invitee's server
 * sign it as any invite of a user of another server (PUT /v2/invite), then
 * store it and send it to the room's servers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms/state_lookup.h"
#include "rooms_internal.h"

/* The partial event, checked against the spec's shape. */
static int check_partial(const hs_req *r, const json_t *b, hs_err *err) {
    const char *type = json_string_value(json_object_get(b, "type"));
    const char *room = json_string_value(json_object_get(b, "room_id"));
    const char *sender = json_string_value(json_object_get(b, "sender"));
    const char *target = json_string_value(json_object_get(b, "state_key"));
    const json_t *content = json_object_get(b, "content");
    const json_t *tpi = json_object_get(content, "third_party_invite");
    const char *membership = json_string_value(json_object_get(content, "membership"));
    if (!type || !room || !sender || !target || !json_is_object(content))
        return hs_err_set(err, 400, "M_MISSING_PARAM",
                          "type, room_id, sender, state_key and content are required");
    if (strcmp(type, "m.room.member") || !membership || strcmp(membership, "invite"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Not an invite");
    if (strcmp(room, r->params[0]))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "The event is not of room %s",
                          r->params[0]);
    if (!json_is_object(tpi) || !json_is_object(json_object_get(tpi, "signed")))
        return hs_err_set(err, 400, "M_MISSING_PARAM", "content.third_party_invite.signed is required");
    /* The server asking is the invitee's: it speaks for its users only. */
    if (!fed_user_of(target, r->origin))
        return hs_err_set(err, 403, "M_FORBIDDEN", "%s is not a user of %s", target, r->origin);
    return 0;
}

/* The room is one we are in and whose ACL lets origin in; its version. */
static const room_version *our_room(db_conn *c, const hs_req *r, hs_err *err) {
    hs_err miss = {0};
    const room_version *v = room_store_room_version(c, r->params[0], &miss);
    int in = v ? fed_server_in_room(c, r->params[0], r->srv->cfg->server_name, err) : 0;
    if (in < 0) return NULL;
    if (!v || !in)
        return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown room %s", r->params[0]), NULL;
    int ok = room_acl_allows(c, r->params[0], r->origin, err);
    if (ok <= 0)
        return ok < 0 ? NULL
                      : (hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s",
                                    r->origin, r->params[0]),
                         NULL);
    return v;
}

/* The event to send, signed by us and allowed by the current state: the
 * partial one on the room's extremities, with the third-party invite's
 * display name (as Synapse's add_display_name_to_third_party_invite). */
static room_event *build(db_conn *c, const hs_req *r, const room_version *v, hs_err *err) {
    json_t *content = json_deep_copy(json_object_get(r->json, "content"));
    json_t *proto = json_pack("{s:s, s:O, s:O, s:O}", "type", "m.room.member", "sender",
                              json_object_get(r->json, "sender"), "state_key",
                              json_object_get(r->json, "state_key"), "content", content);
    json_decref(content);
    json_t *tpi = json_object_get(content, "third_party_invite");
    const char *token = json_string_value(json_object_get(json_object_get(tpi, "signed"), "token"));
    hs_err none = {0};
    room_event *inv = token ? room_store_current_event(c, r->params[0], "m.room.third_party_invite",
                                                       token, &none)
                            : NULL;
    json_t *name = inv ? json_object_get(inv->content, "display_name") : NULL;
    if (json_is_string(name)) json_object_set(tpi, "display_name", name);
    room_event_free(inv);
    json_t *ev = room_event_template(c, v, r->params[0], proto, err);
    json_decref(proto);
    if (ev) json_object_set_new(ev, "origin", json_string(r->srv->cfg->server_name));
    room_event *out = NULL;
    if (ev && room_event_finish(v, ev, r->srv->cfg->server_name, &r->srv->key, err) == 0 &&
        (out = room_event_parse(v, ev, err))) {
        room_lookup l = {.c = c, .room_id = out->room_id, .current = true};
        hs_err deny = {0};
        int rc = room_auth_check(out, room_lookup_get, &l, &deny);
        if (l.failed) *err = l.err, rc = -1;
        else if (rc != 0)
            rc = hs_err_set(err, 403, "M_FORBIDDEN", "%s", deny.msg[0] ? deny.msg : "not allowed");
        room_lookup_clear(&l);
        if (rc != 0) room_event_free(out), out = NULL;
    }
    json_decref(ev);
    return out;
}

static int put_exchange(hs_req *r, json_t **out, hs_err *err) {
    if (check_partial(r, r->json, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const room_version *v = our_room(c, r, err);
    room_event *ev = v ? build(c, r, v, err) : NULL;
    json_t *signed_ev = ev ? fed_invite_ask(c, r->srv, ev, err) : NULL;
    db_release(r->srv->db, c);
    room_event *final = signed_ev ? room_event_parse(v, signed_ev, err) : NULL;
    json_decref(signed_ev);
    room_event_free(ev);
    room_state_map *before = NULL;
    int rc = final && fed_state_before(r->srv, r->origin, final, true, &before, err) == 0 &&
                     fed_persist_event(r->srv, final, before, true, r->srv->cfg->server_name,
                                       NULL, err) == 0
                 ? 200
                 : -1;
    room_state_map_free(before);
    room_event_free(final);
    if (rc == 200) *out = json_object();
    return rc;
}

void fed_third_party_invite_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/federation/v1/exchange_third_party_invite/{roomId}",
             put_exchange, HS_FEDERATION);
}
