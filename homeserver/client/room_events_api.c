/* room_events_api.c — sending and reading a room's events and state:
 * send, state (PUT/GET), redact, event, joined_rooms, members, joined_members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "client.h"
#include "homeserver/http/ratelimit.h"
#include "events_read.h"
#include "relations.h"
#include "remote_rooms.h"
#include "room_access.h"
#include "room_snapshot.h"
#include "room_send.h"
#include "server_notices.h"
#include "suspension.h"
#include "sync_token.h"
#include "rooms/state_lookup.h"

static json_t *proto_of(hs_req *r, const char *type, const char *state_key, json_t *content) {
    json_t *p = json_pack("{s:s, s:s, s:O}", "type", type, "sender", r->user_id, "content", content);
    if (state_key) json_object_set_new(p, "state_key", json_string(state_key));
    return p;
}

static int answer_event_id(room_event *ev, char *existing, json_t **out) {
    *out = json_pack("{s:s}", "event_id", ev ? ev->event_id : existing);
    room_event_free(ev);
    free(existing);
    return 200;
}

static int limit_messages(hs_req *r, hs_err *err) {
    return hs_ratelimit("message", r->user_id, &r->srv->cfg->rc_message, err);
}

static int send_redaction(hs_req *r, const char *target, const json_t *body, const char *txn,
                          json_t **out, hs_err *err);

/* PUT /send/{eventType}/{txnId}, and Synapse's legacy POST without a
 * transaction ID (no idempotency: each POST sends), which older clients and
 * SyTest still use. */
static int put_send(hs_req *r, json_t **out, hs_err *err) {
    const char *txn = r->n_params > 2 ? r->params[2] : NULL;
    char *existing = NULL;
    room_event *ev;
    if (r->ctx) { /* resumed: its batch was written */
        if (!(ev = client_room_send_parked(r, &existing, err)) && !existing) return -1;
        return answer_event_id(ev, existing, out);
    }
    /* v1.18 (MSC4169): a redaction sent here names its target in
     * content.redacts in every room version, and is the same redaction as
     * PUT /redact would make (moved to the top level before v11). Guests
     * may not redact, as PUT /redact's route refuses them. */
    if (!strcmp(r->params[1], "m.room.redaction")) {
        if (r->is_guest)
            return hs_err_set(err, 403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed");
        const char *target = json_string_value(json_object_get(r->json, "redacts"));
        if (!target || target[0] != '$')
            return hs_err_set(err, 400, "M_BAD_JSON",
                              "m.room.redaction needs content.redacts, an event ID");
        return send_redaction(r, target, r->json, txn, out, err);
    }
    if (client_suspended_may_send(r, r->params[1], NULL, r->json, err) < 0) return -1;
    if (limit_messages(r, err) < 0) return -1;
    json_t *p = proto_of(r, r->params[1], NULL, r->json);
    int rc = client_room_send_queued(r, r->params[0], p, txn, &ev, &existing, err);
    json_decref(p);
    if (rc == HS_SUSPENDED) return HS_SUSPENDED;
    if (!ev && !existing) return -1;
    return answer_event_id(ev, existing, out);
}

static int put_state(hs_req *r, json_t **out, hs_err *err) {
    if (limit_messages(r, err) < 0) return -1;
    const char *sk = r->n_params > 2 && r->params[2] ? r->params[2] : "";
    /* A room has one create event, made with it (Synapse's words and code). */
    if (!strcmp(r->params[1], "m.room.create"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Cannot resend m.room.create event");
    if (client_suspended_may_send(r, r->params[1], sk, r->json, err) < 0) return -1;
    if (!strcmp(r->params[1], "m.room.canonical_alias") && !*sk &&
        client_canonical_alias_check(r, r->params[0], r->json, err) < 0)
        return -1;
    /* Rejecting a server notices invite is refused here as through /leave. */
    const char *m = json_string_value(json_object_get(r->json, "membership"));
    if (!strcmp(r->params[1], "m.room.member") && !strcmp(sk, r->user_id) && m &&
        !strcmp(m, "leave") && client_server_notice_check_leave(r->srv, r->params[0], sk, err) < 0)
        return -1;
    json_t *content = json_deep_copy(r->json);
    /* A client's member event never names an authorising user: that key is
     * the server's, for a restricted join it vouches for (restricted_join.c),
     * and would not carry the authorising server's signature. Dropped, as
     * Synapse does (a join -> join to change a display name may copy it). */
    if (!strcmp(r->params[1], "m.room.member"))
        json_object_del(content, "join_authorised_via_users_server");
    json_t *p = proto_of(r, r->params[1], sk, content);
    json_decref(content);
    room_event *ev = client_room_send(r->srv, NULL, r->params[0], p, err);
    json_decref(p);
    return ev ? answer_event_id(ev, NULL, out) : -1;
}

/* Whether the user's power level in the room reaches its "redact" level. */
static bool has_redact_power(hs_req *r, db_conn *c, const room_version *v) {
    room_lookup l = {.c = c, .room_id = r->params[0], .current = true};
    const room_event *pl = room_lookup_get(&l, "m.room.power_levels", "");
    json_t *lvl = pl ? json_object_get(pl->content, "redact") : NULL;
    long long need = json_is_integer(lvl) ? json_integer_value(lvl)
                     : json_is_string(lvl) ? atoll(json_string_value(lvl)) : 50;
    bool ok = room_user_power_level(v, r->user_id, room_lookup_get, &l) >= need;
    room_lookup_clear(&l);
    return ok;
}

/* Locally a user may redact their own events, or others' with the power
 * level "redact" (the spec's server-domain rule is for other servers'
 * redactions, which vouch for their users). An event we do not have (one
 * of another server that never reached us) may be redacted by a user with
 * that power all the same, as Synapse does: the redaction goes to the
 * room's servers, which have it. Without the power, whose event it is
 * cannot be known, so it is "not found". */
static int may_redact(hs_req *r, db_conn *c, const room_version *v, const char *target_id,
                      hs_err *err) {
    hs_err miss = {0};
    room_event *target = room_store_get_event(c, target_id, &miss);
    if (!target && miss.status != 404) return *err = miss, -1;
    if (!target) {
        if (client_suspended_may_redact(r, "", err) < 0) return -1;
        if (has_redact_power(r, c, v)) return 0;
        return hs_err_set(err, 404, "M_NOT_FOUND", "Could not find event %s", target_id);
    }
    int rc = 0;
    if (strcmp(target->room_id, r->params[0]) != 0) {
        /* Another room's event: 400, as Synapse answers, to a user with the
         * power to redact here, whom an unknown event would not stop (so
         * the answer tells them no more than that would); "not found" to
         * others, as an unknown event. */
        rc = has_redact_power(r, c, v)
                 ? hs_err_set(err, 400, "M_INVALID_PARAM", "Cannot redact an event of another room")
                 : hs_err_set(err, 404, "M_NOT_FOUND", "Could not find event %s", target_id);
    } else if (client_suspended_may_redact(r, target->sender, err) < 0) {
        rc = -1;
    } else if (strcmp(target->sender, r->user_id) != 0 && !has_redact_power(r, c, target->ver)) {
        rc = hs_err_set(err, 403, "M_FORBIDDEN", "You cannot redact this event");
    }
    room_event_free(target);
    return rc;
}

/* A redaction of target in the room, with the client's content (its reason
 * and any other keys; "redacts" is placed per room version here), under the
 * client's transaction ID. Both PUT /redact and PUT /send/m.room.redaction
 * (v1.18, MSC4169) come here, so both check and store the same thing. */
static int send_redaction(hs_req *r, const char *target, const json_t *body, const char *txn,
                          json_t **out, hs_err *err) {
    const char *room_id = r->params[0];
    /* Admins redact under rc_admin_redaction when it is set (Synapse). */
    const cfg_ratelimit *rl = r->is_admin && r->srv->cfg->rc_admin_redaction.per_second > 0
                                  ? &r->srv->cfg->rc_admin_redaction
                                  : &r->srv->cfg->rc_message;
    if (hs_ratelimit(rl == &r->srv->cfg->rc_message ? "message" : "admin-redaction", r->user_id,
                     rl, err) < 0)
        return -1;
    const json_t *reason = json_object_get(body, "reason");
    if (reason && !json_is_string(reason))
        return hs_err_set(err, 400, "M_BAD_JSON", "'reason' must be a string");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const room_version *v = room_store_room_version(c, room_id, err);
    int ok = v && client_require_joined(c, room_id, r->user_id, err) == 0 &&
             may_redact(r, c, v, target, err) == 0;
    db_release(r->srv->db, c);
    if (!ok) return -1;
    json_t *content = json_deep_copy(body);
    json_object_del(content, "redacts");
    /* v11 moved "redacts" into content; older versions keep it top-level. */
    if (v->updated_redaction_rules) json_object_set_new(content, "redacts", json_string(target));
    json_t *p = proto_of(r, "m.room.redaction", NULL, content);
    json_decref(content);
    if (!v->updated_redaction_rules) json_object_set_new(p, "redacts", json_string(target));
    char *existing = NULL;
    room_event *ev = client_room_send_txn(r->srv, room_id, p, r->device_id, txn, &existing, err);
    json_decref(p);
    if (!ev && !existing) return -1;
    return answer_event_id(ev, existing, out);
}

/* PUT /redact/{eventId}/{txnId}, and the legacy POST without one. */
static int put_redact(hs_req *r, json_t **out, hs_err *err) {
    return send_redaction(r, r->params[1], r->json, r->n_params > 2 ? r->params[2] : NULL, out,
                          err);
}

/* The state a user may read (room_access.h): the current state while
 * joined, the state when they left otherwise (if they were ever in the
 * room), and the current state of a world_readable room to anyone else
 * (peeking, as guests and room previews do; *peeking says so). */
static int readable_state(hs_req *r, db_conn *c, room_state_map *out, bool *peeking, hs_err *err) {
    client_room_view v;
    if (client_room_view_of(c, r->params[0], r->user_id, &v, err) < 0) return -1;
    if (peeking) *peeking = v.peeking;
    return client_room_view_state(c, r->params[0], &v, out, err);
}

static int get_state_all(hs_req *r, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    room_state_map *m = room_state_map_new();
    int rc = -1;
    if (readable_state(r, c, m, NULL, err) == 0) {
        size_t n = room_state_map_count(m), i = 0, it = 0;
        const char **ids = calloc(n ? n : 1, sizeof *ids);
        const char *id;
        while (room_state_map_next(m, &it, NULL, NULL, &id)) ids[i++] = id;
        *out = json_array();
        rc = client_events_by_ids(c, ids, n, true, *out, err) == 0 ? 200 : -1;
        free(ids);
    }
    room_state_map_free(m);
    db_release(r->srv->db, c);
    return rc;
}

static int get_state_one(hs_req *r, json_t **out, hs_err *err) {
    const char *sk = r->n_params > 2 && r->params[2] ? r->params[2] : "";
    /* v1.16: format=content (the default) or event, as Synapse checks it. */
    const char *format = hs_req_query(r, "format");
    if (format && strcmp(format, "event") && strcmp(format, "content"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "format must be one of: content, event");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    room_state_map *m = room_state_map_new();
    int rc = -1;
    if (readable_state(r, c, m, NULL, err) == 0) {
        const char *id = room_state_map_get(m, r->params[1], sk);
        json_t *ev = id ? client_event_by_id(c, id, true, err) : NULL;
        if (!id) hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
        if (ev) {
            *out = format && !strcmp(format, "event") ? json_incref(ev)
                                                      : json_incref(json_object_get(ev, "content"));
            rc = 200;
        }
        json_decref(ev);
    }
    room_state_map_free(m);
    db_release(r->srv->db, c);
    return rc;
}

/* GET /event: the event as the user may see it under the room's history
 * visibility (client_events_by_ids_for: member or not, what they could not
 * see then stays hidden), with what concerns them in unsigned. An event
 * they may not see, in a room they may not read, or in another room is
 * 404 M_NOT_FOUND alike, as the spec says and Synapse answers. */
static int get_event(hs_req *r, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    client_room_view v;
    json_t *arr = json_array(), *ev = NULL;
    const char *ids[] = {r->params[1]};
    int rc = client_room_view_of(c, r->params[0], r->user_id, &v, err);
    if (rc == 0) rc = client_events_by_ids_for(c, r->user_id, r->device_id, ids, 1, true, arr, err);
    db_release(r->srv->db, c);
    if (rc == 0) ev = json_array_get(arr, 0);
    const char *room = json_string_value(json_object_get(ev, "room_id"));
    if (rc == 0 && ev && room && !strcmp(room, r->params[0])) {
        *out = json_incref(ev);
        rc = 200;
    } else if (rc == 0 || err->status == 403) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
        rc = -1;
    }
    json_decref(arr);
    return rc;
}

/* GET /events/{eventId} (deprecated, old_sync.yaml): the same without a
 * room to name, so with the same rule: an event the user may not see is
 * as unknown (404), whatever its room. In the old APIs' v1 format. */
static int get_event_v1(hs_req *r, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    json_t *arr = json_array();
    const char *ids[] = {r->params[0]};
    int rc = client_events_by_ids_for(c, r->user_id, r->device_id, ids, 1, true, arr, err);
    db_release(r->srv->db, c);
    json_t *ev = json_array_get(arr, 0);
    if (rc == 0 && ev) {
        client_events_v1_format(arr);
        *out = json_incref(ev);
        rc = 200;
    } else if (rc == 0) {
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
    }
    json_decref(arr);
    return rc;
}

static int get_joined_rooms(hs_req *r, json_t **out, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    char **ids;
    size_t n;
    int rc = client_joined_rooms(c, r->user_id, &ids, &n, err);
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_string(ids[i])), free(ids[i]);
    free(ids);
    *out = json_pack("{s:o}", "joined_rooms", arr);
    return 200;
}

/* The event whose state is the room's as of position pos: the last one at
 * or before it; for a point before the room's first event (the prev_batch
 * of a /sync timeline that begins with the room's creation) its first
 * membership event, the room as its creator made it, rather than a room
 * without members. malloc'd, or NULL with err. */
static char *event_at_pos(db_conn *c, const char *room_id, long long pos, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id FROM ("
        " (SELECT event_id, 0 AS k FROM events WHERE room_id = $1 AND stream_ordering <= $2"
        "  AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
        "  ORDER BY stream_ordering DESC LIMIT 1)"
        " UNION ALL"
        " (SELECT event_id, 1 FROM events WHERE room_id = $1 AND type = 'm.room.member'"
        "  AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
        "  ORDER BY stream_ordering ASC LIMIT 1)) x ORDER BY k LIMIT 1");
    char ps[24];
    snprintf(ps, sizeof ps, "%lld", pos);
    PGresult *res = db_run(c, &q, 2, (const char *[]){room_id, ps}, err);
    if (!res) return NULL;
    char *id = PQntuples(res) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    if (!id) hs_err_set(err, 404, "M_NOT_FOUND", "Can't find event for token");
    return id;
}

/* /members?at=: the state as of a pagination or /sync token (Synapse's
 * get_state_events with at_token), no later than what the user may read,
 * and only if the user may see the room at that point under its history
 * visibility (else 403, as Synapse answers). */
static int state_at_token(hs_req *r, db_conn *c, const char *at, room_state_map *out,
                          hs_err *err) {
    long long pos;
    if (!sync_token_pagination_pos(at, &pos))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid stream token");
    client_room_view v;
    if (client_room_view_of(c, r->params[0], r->user_id, &v, err) < 0) return -1;
    char *id = event_at_pos(c, r->params[0], pos < v.horizon ? pos : v.horizon, err);
    if (!id) return -1;
    json_t *seen = json_array();
    const char *ids[] = {id};
    int rc = client_events_by_ids_for(c, r->user_id, NULL, ids, 1, false, seen, err);
    if (rc == 0 && json_array_size(seen) == 0)
        rc = hs_err_set(err, 403, "M_FORBIDDEN", "User %s may not view the members of %s at %s",
                        r->user_id, r->params[0], at);
    if (rc == 0) rc = room_store_state_at(c, id, true, out, err);
    json_decref(seen);
    free(id);
    return rc;
}

/* /members: member events of the readable state (or of the state at `at`),
 * filtered by membership. */
static int get_members(hs_req *r, json_t **out, hs_err *err) {
    const char *only = hs_req_query(r, "membership"), *not = hs_req_query(r, "not_membership");
    const char *at = hs_req_query(r, "at");
    client_await_full_state(r->srv, r->params[0]); /* before taking a connection */
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    room_state_map *m = room_state_map_new();
    int rc = -1;
    if ((at ? state_at_token(r, c, at, m, err) : readable_state(r, c, m, NULL, err)) == 0) {
        size_t n = 0, it = 0;
        const char **ids = calloc(room_state_map_count(m) + 1, sizeof *ids);
        const char *type, *id;
        while (room_state_map_next(m, &it, &type, NULL, &id))
            if (!strcmp(type, "m.room.member")) ids[n++] = id;
        json_t *all = json_array(), *chunk = json_array();
        if (client_events_by_ids(c, ids, n, true, all, err) == 0) {
            size_t i;
            json_t *ev;
            json_array_foreach(all, i, ev) {
                const char *ms =
                    json_string_value(json_object_get(json_object_get(ev, "content"), "membership"));
                if ((only && (!ms || strcmp(ms, only))) || (not && ms && !strcmp(ms, not))) continue;
                json_array_append(chunk, ev);
            }
            *out = json_pack("{s:o}", "chunk", chunk);
            chunk = NULL;
            rc = 200;
        }
        json_decref(chunk);
        json_decref(all);
        free(ids);
    }
    room_state_map_free(m);
    db_release(r->srv->db, c);
    return rc;
}

static int get_joined_members(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.state_key, convert_from(e.json, 'UTF8')::json->'content'->>'displayname',"
        " convert_from(e.json, 'UTF8')::json->'content'->>'avatar_url'"
        " FROM current_state cs JOIN events e USING (event_id)"
        " WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.membership = 'join'");
    client_await_full_state(r->srv, r->params[0]);
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = NULL;
    if (client_require_joined(c, r->params[0], r->user_id, err) == 0)
        res = db_run(c, &q, 1, (const char *[]){r->params[0]}, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    json_t *joined = json_object();
    for (int i = 0; i < PQntuples(res); i++) {
        /* Unset values are null, as Synapse answers (nio requires both keys). */
        json_t *u = json_pack("{s:o, s:o}", "display_name",
                              PQgetisnull(res, i, 1) ? json_null() : json_string(PQgetvalue(res, i, 1)),
                              "avatar_url",
                              PQgetisnull(res, i, 2) ? json_null() : json_string(PQgetvalue(res, i, 2)));
        json_object_set_new(joined, PQgetvalue(res, i, 0), u);
    }
    PQclear(res);
    *out = json_pack("{s:o}", "joined", joined);
    return 200;
}

void client_room_events_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}", put_send, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "PUT", "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey?}", put_state, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey?}", get_state_one, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/state", get_state_all, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "PUT", "/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}", put_redact, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/send/{eventType}", put_send, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/redact/{eventId}", put_redact, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/event/{eventId}", get_event, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/events/{eventId}", get_event_v1, HS_AUTH | HS_R0);
    hs_route(rt, "GET", "/_matrix/client/v3/joined_rooms", get_joined_rooms, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/members", get_members, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/joined_members", get_joined_members, HS_AUTH | HS_R0);
}
