/* invite.c — invites across servers, both ways.
 *
 * PUT /_matrix/federation/v2/invite/{roomId}/{eventId} (and the
 * deprecated v1, for rooms of versions 1 and 2): another server
 * invites one of our users. We check the event is what it claims (spec's
 * list: an invite, from a user of the calling server, to a user of ours,
 * properly signed, and signed by the room's Policy Server if we know the
 * room to use one), sign it, and — when we are not in the room — keep it
 * with its stripped state so the user's /sync shows the invite. When we are
 * in the room it arrives again by /send, as any event.
 *
 * Our invite of another server's user: the event is built and stored in
 * the sending transaction (homeserver/client/room_send.c), then the
 * invitee's server signs it here and the signed copy replaces the stored
 * one before the commit; a refusal rolls the invite back and the inviting
 * client gets the other server's answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/channels.h"
#include "homeserver/client/remote_rooms.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "rooms_internal.h"

/* ---- inbound ---- */

static int check_invite(hs_req *r, const room_event *ev, hs_err *err) {
    static db_stmt user = DB_STMT("SELECT 1 FROM users WHERE user_id = $1");
    if (strcmp(ev->event_id, r->params[1]) != 0 || strcmp(ev->room_id, r->params[0]) != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "The event is not %s of %s", r->params[1],
                          r->params[0]);
    if (strcmp(ev->type, "m.room.member") != 0 || !ev->membership ||
        strcmp(ev->membership, "invite"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Not an invite event");
    if (!fed_user_of(ev->sender, r->origin))
        return hs_err_set(err, 403, "M_FORBIDDEN", "The sender is not a user of %s", r->origin);
    if (!ev->state_key || !fed_user_of(ev->state_key, r->srv->cfg->server_name))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "The invite is not for a user of this server");
    db_conn *c = db_acquire(r->srv->db, err);
    /* The room's ACL first, as Synapse checks it: a banned server learns
     * nothing, not even whether the user exists. */
    int acl = c ? room_acl_allows(c, ev->room_id, r->origin, err) : -1;
    PGresult *res = acl > 0 ? db_run(c, &user, 1, (const char *[]){ev->state_key}, err) : NULL;
    int known = acl > 0 ? (res ? PQntuples(res) > 0 : -1) : 0;
    int blocked = known > 0 ? client_invites_blocked(c, ev->state_key, err) : 0;
    PQclear(res);
    db_release(r->srv->db, c);
    if (acl < 0 || known < 0 || blocked < 0) return -1;
    if (!acl)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                          r->origin, ev->room_id);
    if (!known) return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown user %s", ev->state_key);
    /* v1.18 invite blocking: the spec's own errcode for it. */
    if (blocked)
        return hs_err_set(err, 403, "M_INVITE_BLOCKED", "%s does not take invites", ev->state_key);
    return 0;
}

/* Spec v1.16: the stripped state must hold the room's create event; for
 * room version 12 (whose room ID is that event's hash) we hold servers to
 * it, as the spec says servers SHOULD for versions after 11, whenever they
 * send stripped state at all. An empty (or absent) list is taken as it is
 * by Synapse, which checks none of this, and by gomatrixserverlib-based
 * senders such as Complement, which send []: it claims nothing about the
 * room that could mislead, and the invitee's client still sees the invite. */
static int check_room_state(const room_version *v, const char *room_id, const json_t *st,
                            hs_err *err) {
    if (st && !json_is_array(st))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "invite_room_state must be an array");
    if (!v->hydra || json_array_size(st) == 0) return 0;
    size_t i;
    json_t *e;
    json_array_foreach(st, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        if (!type || strcmp(type, "m.room.create")) continue;
        hs_err perr = {0};
        room_event *create = room_event_parse(v, e, &perr);
        bool ok = create && !strcmp(create->room_id, room_id);
        room_event_free(create);
        if (ok) return 0;
    }
    return hs_err_set(err, 400, "M_INVALID_PARAM", /* the spec's SHOULD */
                      "invite_room_state lacks the room's m.room.create");
}

/* In a room we know to use a Policy Server (rooms/policy_server.h): an
 * invite it will not sign is refused rather than soft-failed, as send_join
 * and the others are: our signature would tell the inviting server the
 * invite went through. When asked, its signature joins the event. */
static int policy_allows(hs_server *srv, room_event *ev, hs_err *err) {
    if (fed_policy_check_incoming(srv, ev, err) < 0) return -1;
    if (ev->policy_refused)
        return hs_err_set(err, 403, "M_FORBIDDEN", "not signed by the room's policy server");
    return 0;
}

/* Both versions: check, sign and (when we are not in the room) keep the
 * invite; *out becomes {"event": the signed event}. */
static int take_invite(hs_req *r, const room_version *v, const json_t *event, const json_t *st,
                       json_t **out, hs_err *err) {
    room_event *ev = fed_event_verify(r->srv, v, event, err);
    if (!ev) return fed_verify_error(err), -1;
    int rc = check_invite(r, ev, err) == 0 && check_room_state(v, ev->room_id, st, err) == 0 &&
                     policy_allows(r->srv, ev, err) == 0
                 ? 0
                 : -1;
    json_t *signed_ev = json_deep_copy(ev->json);
    if (rc == 0 && fed_event_sign(r->srv, v, signed_ev, err) < 0) rc = -1;
    room_event *stored = rc == 0 ? room_event_parse(v, signed_ev, err) : NULL;
    db_conn *c = stored ? db_acquire(r->srv->db, err) : NULL;
    int in = c ? client_room_has_local_member(c, r->srv, ev->room_id, err) : -1;
    db_release(r->srv->db, c);
    if (in == 0 && fed_remote_membership_store(r->srv, stored, ev->state_key, "invite", st,
                                               r->origin, err) < 0)
        in = -1;
    if (in >= 0) *out = json_pack("{s:O}", "event", signed_ev);
    room_event_free(stored);
    room_event_free(ev);
    json_decref(signed_ev);
    return in >= 0 ? 200 : -1;
}

static int put_invite(hs_req *r, json_t **out, hs_err *err) {
    const char *ver = json_string_value(json_object_get(r->json, "room_version"));
    const json_t *event = json_object_get(r->json, "event");
    const json_t *st = json_object_get(r->json, "invite_room_state");
    if (!ver || !json_is_object(event))
        return hs_err_set(err, 400, "M_MISSING_PARAM", "room_version and event are required");
    const room_version *v = room_version_get(ver);
    if (!v) {
        *out = json_pack("{s:s, s:s, s:s}", "errcode", "M_INCOMPATIBLE_ROOM_VERSION", "error",
                         "This server does not support this room version", "room_version", ver);
        return 400;
    }
    return take_invite(r, v, event, st, out, err);
}

/* v1 (deprecated, still in the spec): the body is the event itself, its
 * stripped state in unsigned.invite_room_state, and no room version: the
 * spec says to assume "1" or "2", which share their event format (they
 * differ only in state resolution, which an invite does not use). The
 * answer is [200, {"event": ...}]. */
static int put_invite_v1(hs_req *r, json_t **out, hs_err *err) {
    if (!json_is_object(r->json))
        return hs_err_set(err, 400, "M_NOT_JSON", "The body must be the invite event");
    const json_t *st = json_object_get(json_object_get(r->json, "unsigned"), "invite_room_state");
    json_t *body = NULL;
    int rc = take_invite(r, room_version_get("1"), r->json, st, &body, err);
    if (rc == 200) *out = fed_v1_answer(body);
    else json_decref(body);
    return rc;
}

/* ---- outbound ---- */

/* The stripped state we send: the room's description and the inviter's
 * membership, as Synapse's room_prejoin_state. */
static json_t *invite_state(db_conn *c, const room_event *ev, hs_err *err) {
    room_state_map *st = room_state_map_new();
    json_t *out = NULL;
    if (st && room_store_current_state(c, ev->room_id, st, err) == 0 &&
        (out = fed_stripped_state_pdus(c, st, err))) {
        const char *me = room_state_map_get(st, "m.room.member", ev->sender);
        if (me && fed_pdus_for_server(c, NULL, &me, 1, false, out, err) < 0)
            json_decref(out), out = NULL;
    }
    room_state_map_free(st);
    return out;
}

static int replace_stored(db_conn *c, const char *event_id, const json_t *json, hs_err *err) {
    static db_stmt up = DB_STMT("UPDATE events SET json = $2 WHERE event_id = $1");
    size_t len = 0;
    char *text = hs_json_canonical_ex(json, (const char *const[]){"unsigned", NULL},
                                      HS_JSON_CANON_ANY_INT, &len, err);
    if (!text) return -1;
    const char *p[] = {event_id, text};
    int lens[] = {0, (int)len}, fmts[] = {0, 1};
    PGresult *r = db_run_ex(c, &up, 2, p, lens, fmts, 0, err);
    free(text);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

/* What the invitee's server sent back must be our event, signed by it. */
static json_t *signed_copy(hs_server *srv, const room_event *ev, const char *dest, json_t *resp,
                           hs_err *err) {
    json_t *got = json_object_get(resp, "event");
    hs_err perr = {0};
    room_event *back = json_is_object(got) ? room_event_parse(ev->ver, got, &perr) : NULL;
    if (!back || strcmp(back->event_id, ev->event_id) != 0) {
        room_event_free(back);
        return hs_err_set(err, 502, "M_UNKNOWN", "%s did not send our invite back", dest), NULL;
    }
    room_event_free(back);
    json_t *red = room_event_redact(ev->ver, got);
    int ok = red ? fed_verify_json_signed_by(srv, red, dest, 0, err) : -1;
    json_decref(red);
    if (ok < 0) return NULL;
    /* Ours with their signatures added: nothing else of theirs is taken. */
    json_t *mine = json_deep_copy(ev->json);
    json_object_set(json_object_get(mine, "signatures"), dest,
                    json_object_get(json_object_get(got, "signatures"), dest));
    return mine;
}

json_t *fed_invite_ask(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err) {
    const char *dest = fed_id_domain(ev->state_key);
    json_t *st = invite_state(c, ev, err);
    if (!st) return NULL;
    json_t *body = json_pack("{s:s, s:O, s:o}", "room_version", ev->ver->id, "event", ev->json,
                             "invite_room_state", st);
    char *path = fed_path2("/_matrix/federation/v2/invite", ev->room_id, ev->event_id);
    long status = 0;
    json_t *resp = NULL;
    int rc = path ? fed_request(srv, dest, "PUT", path, body, &status, &resp, err) : -1;
    free(path);
    json_decref(body);
    /* A server without the v2 API: v1 (still in the spec, Synapse falls
     * back so too), whose body is the event with the stripped state in its
     * unsigned, and whose answer is [200, {"event": …}]. */
    if (rc < 0 && fed_endpoint_unknown(status, err)) {
        json_decref(resp);
        resp = NULL;
        json_t *v1 = invite_state(c, ev, err), *wrapped = NULL;
        json_t *evj = v1 ? json_deep_copy(ev->json) : NULL;
        if (evj) {
            json_t *u = json_object_get(evj, "unsigned");
            if (!json_is_object(u)) json_object_set_new(evj, "unsigned", u = json_object());
            json_object_set_new(u, "invite_room_state", v1);
            v1 = NULL;
        }
        json_decref(v1);
        char *p1 = evj ? fed_path2("/_matrix/federation/v1/invite", ev->room_id, ev->event_id)
                       : NULL;
        fed_request_opts o = {.array_ok = true};
        hs_err e1 = {0};
        if (p1 && fed_request_ex(srv, dest, "PUT", p1, evj, &o, &status, &wrapped, &e1) == 0) {
            json_t *inner = json_array_get(wrapped, 1);
            if (json_is_object(inner)) resp = json_incref(inner), rc = 0;
            else hs_err_set(err, 502, "M_UNKNOWN", "%s sent a malformed v1 invite answer", dest);
        } else if (p1) {
            *err = e1;
        }
        json_decref(wrapped);
        json_decref(evj);
        free(p1);
    }
    json_t *mine = rc == 0 ? signed_copy(srv, ev, dest, resp, err) : NULL;
    json_decref(resp);
    return mine;
}

int fed_invite_remote(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err) {
    json_t *mine = fed_invite_ask(c, srv, ev, err);
    if (!mine) return -1;
    int rc = replace_stored(c, ev->event_id, mine, err);
    json_decref(mine);
    return rc;
}

void fed_invite_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/federation/v1/invite/{roomId}/{eventId}", put_invite_v1,
             HS_FEDERATION);
    hs_route(rt, "PUT", "/_matrix/federation/v2/invite/{roomId}/{eventId}", put_invite,
             HS_FEDERATION);
}
