/* remote_join.c — our users joining, knocking on and leaving rooms this
 * server is not in, through a server that is (spec "Joining Rooms",
 * "Knocking upon a room", "Leaving Rooms").
 *
 * The handshake per candidate server: make_* gives a template, which must be
 * what we asked for (room, user, type, membership); we finish it (origin,
 * timestamp, our content, hashes, signature, event ID) and send_* it. A join
 * brings the room's whole state and auth chain: every event is verified and
 * stored as an outlier (auth-checked against its auth events), then our join
 * goes in on top of that state as the room's first timeline event, and the
 * room is ours like any other. A join asks for omit_members (MSC3706): when
 * the answer leaves the members out, the join goes in on the state we got
 * and partial_state.c fetches the rest in the background, so a join to a
 * room of thousands returns in about the time of a small one. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/remote_rooms.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "homeserver/core/server_name.h"
#include "rooms_internal.h"

/* "?ver=1&ver=2…" with every version we support. */
static void versions_query(char *buf, size_t n) {
    size_t w = 0;
    buf[0] = 0;
    for (const room_version *v = room_versions_all(); v->id && w < n; v++)
        w += (size_t)snprintf(buf + w, n - w, "%sver=%s", w ? "&" : "?", v->id);
}

static int check_template(const json_t *t, const char *membership, const char *user_id,
                          const char *room_id, const char *dest, hs_err *err) {
    const char *type = json_string_value(json_object_get(t, "type"));
    const char *rid = json_string_value(json_object_get(t, "room_id"));
    const char *sender = json_string_value(json_object_get(t, "sender"));
    const char *sk = json_string_value(json_object_get(t, "state_key"));
    const char *m = json_string_value(json_object_get(json_object_get(t, "content"), "membership"));
    if (!type || strcmp(type, "m.room.member") || !rid || strcmp(rid, room_id) || !sender ||
        strcmp(sender, user_id) || !sk || strcmp(sk, user_id) || !m || strcmp(m, membership))
        return hs_err_set(err, 502, "M_UNKNOWN", "%s sent a malformed make_%s template", dest,
                          membership);
    return 0;
}

/* The event to send: the template with our origin, time, content and signature. */
static room_event *finish(hs_server *srv, const room_version *v, const json_t *tmpl,
                          const json_t *content, hs_err *err) {
    json_t *ev = json_deep_copy(tmpl);
    json_t *c = json_deep_copy(content);
    json_t *tc = json_object_get(ev, "content");
    const char *keep[] = {"membership", "join_authorised_via_users_server"};
    for (size_t i = 0; i < 2; i++)
        if (json_object_get(tc, keep[i])) json_object_set(c, keep[i], json_object_get(tc, keep[i]));
    json_object_set_new(ev, "content", c);
    json_object_set_new(ev, "origin", json_string(srv->cfg->server_name));
    json_object_set_new(ev, "origin_server_ts", json_integer(hs_now_ms()));
    const char *drop[] = {"event_id", "hashes", "signatures", "unsigned"};
    for (size_t i = 0; i < 4; i++) json_object_del(ev, drop[i]);
    room_event *out = room_event_finish(v, ev, srv->cfg->server_name, &srv->key, err) == 0
                          ? room_event_parse(v, ev, err)
                          : NULL;
    json_decref(ev);
    return out;
}

/* make_* at dest: the finished event, or NULL with err. */
static room_event *make_event(hs_server *srv, const char *dest, const char *membership,
                              const char *user_id, const char *room_id, const json_t *content,
                              hs_err *err) {
    char prefix[64], q[256];
    snprintf(prefix, sizeof prefix, "/_matrix/federation/v1/make_%s", membership);
    char *path = fed_path2(prefix, room_id, user_id), *full = NULL;
    if (strcmp(membership, "leave") != 0) versions_query(q, sizeof q);
    else q[0] = 0;
    if (path && asprintf(&full, "%s%s", path, q) < 0) full = NULL;
    free(path);
    long status;
    json_t *resp = NULL;
    int rc = full ? fed_request(srv, dest, "GET", full, NULL, &status, &resp, err) : -1;
    free(full);
    const char *ver = json_string_value(json_object_get(resp, "room_version"));
    const room_version *v = room_version_get(ver ? ver : "1");
    const json_t *tmpl = json_object_get(resp, "event");
    room_event *ev = NULL;
    if (rc == 0 && !v) {
        hs_err_set(err, 400, "M_INCOMPATIBLE_ROOM_VERSION", "Room version %s is not supported",
                   ver);
        if (strlen(ver) < sizeof err->room_version) strcpy(err->room_version, ver);
    }
    else if (rc == 0 && check_template(tmpl, membership, user_id, room_id, dest, err) == 0)
        ev = finish(srv, v, tmpl, content, err);
    json_decref(resp);
    return ev;
}

/* ---- after send_join ---- */

/* The create event of the answer must be the room's, of the version we built for. */
static int check_create(const room_version *v, const char *room_id, const json_t *state,
                        hs_err *err) {
    size_t i;
    json_t *e;
    json_array_foreach(state, i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *sk = json_string_value(json_object_get(e, "state_key"));
        if (!type || strcmp(type, "m.room.create") || !sk || *sk) continue;
        hs_err perr = {0};
        room_event *create = room_event_parse(v, e, &perr);
        const char *ver =
            create ? json_string_value(json_object_get(create->content, "room_version")) : NULL;
        bool ok = create && !strcmp(create->room_id, room_id) && !strcmp(ver ? ver : "1", v->id);
        room_event_free(create);
        if (ok) return 0;
        break;
    }
    return hs_err_set(err, 502, "M_UNKNOWN", "The join answer lacks the room's create event");
}

/* The state map of the answer: its events that we stored and did not reject. */
static int state_map(hs_server *srv, const room_version *v, const json_t *state,
                     room_state_map *out, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT type, state_key, event_id FROM events WHERE event_id = ANY($1::text[])"
                " AND state_key IS NOT NULL AND rejected_reason IS NULL");
    size_t n = 0, i;
    json_t *e;
    char **ids = calloc(json_array_size(state) + 1, sizeof *ids);
    json_array_foreach(state, i, e) {
        hs_err perr = {0};
        room_event *ev = ids ? room_event_parse(v, e, &perr) : NULL;
        if (ev) ids[n++] = strdup(ev->event_id);
        room_event_free(ev);
    }
    char *arr = ids ? db_text_array((const char *const *)ids, n) : NULL;
    room_store_free_ids(ids, n);
    db_conn *c = arr ? db_acquire(srv->db, err) : NULL;
    PGresult *r = c ? db_run(c, &q, 1, (const char *[]){arr}, err) : NULL;
    db_release(srv->db, c);
    free(arr);
    if (!r) return -1;
    int rc = 0;
    for (int k = 0; k < PQntuples(r) && rc == 0; k++)
        rc = room_state_map_set(out, PQgetvalue(r, k, 0), PQgetvalue(r, k, 1), PQgetvalue(r, k, 2));
    PQclear(r);
    return rc;
}

static void forget_remote_membership(hs_server *srv, const char *room_id, const char *user_id) {
    static db_stmt del =
        DB_STMT("DELETE FROM fed_remote_memberships WHERE room_id = $1 AND user_id = $2");
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c || db_exec(c, &del, 2, (const char *[]){room_id, user_id}, &err) < 0)
        hs_warn("federation: cannot drop the remote membership of %s in %s: %s", user_id, room_id,
                err.msg);
    db_release(srv->db, c);
}

/* The servers to resync a partial-state room from: the one that answered
 * first, then its servers_in_room, ours and duplicates left out. */
static const char **resync_servers(hs_server *srv, const char *dest, const json_t *listed,
                                   size_t *n) {
    const char **out = calloc(json_array_size(listed) + 2, sizeof *out);
    *n = 0;
    if (!out) return NULL;
    out[(*n)++] = dest;
    size_t i;
    json_t *x;
    json_array_foreach(listed, i, x) {
        const char *s = json_string_value(x);
        if (!s || !strcmp(s, srv->cfg->server_name) || !hs_server_name_valid(s)) continue;
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++) dup = !strcmp(out[k], s);
        if (!dup) out[(*n)++] = s;
    }
    return out;
}

typedef struct mark_arg {
    const char **servers;
    size_t n;
} mark_arg;

static int mark_partial(db_conn *c, const room_event *ev, void *arg, hs_err *err) {
    mark_arg *m = arg;
    return fed_partial_state_mark(c, ev->room_id, ev->event_id, m->servers, m->n, err);
}

static int store_join(hs_server *srv, const char *dest, const room_event *ours, json_t *resp,
                      hs_err *err) {
    const room_version *v = ours->ver;
    /* Only a server that says it left members out gave us a partial state. */
    bool partial = json_is_true(json_object_get(resp, "members_omitted"));
    const json_t *state = json_object_get(resp, "state"),
                 *chain = json_object_get(resp, "auth_chain");
    if (!json_is_array(state) || !json_is_array(chain))
        return hs_err_set(err, 502, "M_UNKNOWN", "%s sent a malformed send_join answer", dest);
    if (check_create(v, ours->room_id, state, err) < 0) return -1;
    json_t *all = json_copy((json_t *)chain);
    json_array_extend(all, (json_t *)state);
    int rc = fed_store_outliers(srv, dest, v, ours->room_id, all, err);
    json_decref(all);
    /* A restricted join comes back signed by the authorising server too. */
    const json_t *signed_back = json_object_get(resp, "event");
    room_event *join = NULL;
    if (rc == 0 && json_is_object(signed_back)) {
        hs_err e = {0};
        join = fed_event_verify(srv, v, signed_back, &e);
        if (join && strcmp(join->event_id, ours->event_id) != 0) room_event_free(join), join = NULL;
    }
    room_state_map *st = rc == 0 ? room_state_map_new() : NULL;
    if (rc == 0 && (!st || state_map(srv, v, state, st, err) < 0)) rc = -1;
    const room_event *ev = join ? join : ours;
    if (rc == 0)
        rc = fed_ensure_events(srv, dest, v, ev->room_id, ev->auth_events, ev->n_auth, err);
    mark_arg m = {0};
    if (rc == 0 && partial)
        m.servers = resync_servers(srv, dest, json_object_get(resp, "servers_in_room"), &m.n);
    /* The resident server sends our join to the rest of the room (Synapse:
     * process_remote_join sets proactively_send false); ours would be a
     * second copy of it in our first /send to that server. */
    fed_persist_opts o = {.require_accepted = true, .partial = partial, .rejoin = true,
                          .not_sent = true,
                          .also = partial ? mark_partial : NULL, .also_arg = &m};
    if (rc == 0) rc = fed_persist_event_opts(srv, ev, st, &o, NULL, err);
    free(m.servers);
    if (rc == 0 && partial) {
        hs_info("federation: joined %s with partial state (%zu state events); resyncing",
                ev->room_id, room_state_map_count(st));
        fed_partial_state_wake();
    }
    if (rc == 0) forget_remote_membership(srv, ev->room_id, ev->state_key);
    room_state_map_free(st);
    room_event_free(join);
    return rc;
}

/* ---- the handshake ---- */

/* Ask for a partial state (omit_members)? Not when we are in the room
 * already with its whole state (a restricted join only another server may
 * authorise, channels.h): a partial answer would set a complete room to
 * partial and fetch it all again. Synapse asks for the full state then. */
static bool want_partial(hs_server *srv, const char *room_id) {
    hs_err e = {0};
    db_conn *c = db_acquire(srv->db, &e);
    int in = c ? client_room_has_local_member(c, srv, room_id, &e) : -1;
    int partial = in > 0 ? fed_room_is_partial(c, room_id, &e) : 0;
    db_release(srv->db, c);
    return in <= 0 || partial != 0;
}

static int send_event(hs_server *srv, const char *dest, const char *membership,
                      const room_event *ev, json_t **resp, hs_err *err) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "/_matrix/federation/%s/send_%s",
             strcmp(membership, "knock") ? "v2" : "v1", membership);
    char *path = fed_path2(prefix, ev->room_id, ev->event_id), *full = NULL;
    /* Partial state unless PVYHS_FEDERATION_FULL_JOIN is set (for the
     * benchmark's comparison only). */
    const char *no_partial = getenv("PVYHS_FEDERATION_FULL_JOIN");
    if (path && !strcmp(membership, "join") && !(no_partial && *no_partial) &&
        want_partial(srv, ev->room_id)) {
        if (asprintf(&full, "%s?omit_members=true", path) < 0) full = NULL;
        free(path);
        path = full;
    }
    long status = 0;
    /* A join answer is the room's whole state: give it time. */
    fed_request_opts o = {.timeout_ms = strcmp(membership, "join") ? 60000 : 600000};
    int rc = path ? fed_request_ex(srv, dest, "PUT", path, ev->json, &o, &status, resp, err) : -1;
    free(path);
    /* A server without the v2 API (it does not know the endpoint): the v1
     * one, still in the spec, whose answer is [200, {…}] (Synapse falls back
     * so too). Knocks have only v1. */
    bool unknown = fed_endpoint_unknown(status, err);
    if (rc < 0 && unknown && strcmp(membership, "knock") != 0) {
        json_decref(*resp); /* v2's error answer */
        *resp = NULL;
        snprintf(prefix, sizeof prefix, "/_matrix/federation/v1/send_%s", membership);
        char *v1 = fed_path2(prefix, ev->room_id, ev->event_id);
        json_t *wrapped = NULL;
        hs_err e1 = {0};
        o.array_ok = true;
        if (v1 && fed_request_ex(srv, dest, "PUT", v1, ev->json, &o, &status, &wrapped, &e1) == 0) {
            json_t *inner = json_array_get(wrapped, 1);
            if (json_is_object(inner)) *resp = json_incref(inner), rc = 0;
            else hs_err_set(err, 502, "M_UNKNOWN", "%s sent a malformed v1 send_%s answer", dest,
                            membership);
        } else if (v1) {
            *err = e1;
        }
        json_decref(wrapped);
        free(v1);
    }
    return rc;
}

static int try_server(hs_server *srv, const char *dest, const char *membership, const char *user_id,
                      const char *room_id, const json_t *content, hs_err *err) {
    room_event *ev = make_event(srv, dest, membership, user_id, room_id, content, err);
    json_t *resp = NULL;
    int rc = ev ? send_event(srv, dest, membership, ev, &resp, err) : -1;
    if (rc == 0 && !strcmp(membership, "join")) {
        rc = store_join(srv, dest, ev, resp, err);
    } else if (rc == 0) {
        const json_t *st = json_object_get(resp, "knock_room_state");
        rc = fed_remote_membership_store(srv, ev, user_id, membership,
                                         json_is_array(st) ? st : NULL, dest, err);
    }
    json_decref(resp);
    room_event_free(ev);
    /* A join answer may have been a big room's state: give the memory back
     * (the resync thread is about to need as much in its own arena). */
    if (!strcmp(membership, "join")) malloc_trim(0);
    return rc;
}

static int remote_membership(hs_server *srv, const char *membership, const char *user_id,
                             const char *room_id, const char *const *servers, size_t n,
                             const json_t *content, hs_err *err) {
    int tried = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(servers[i], srv->cfg->server_name)) continue;
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++) dup = !strcmp(servers[k], servers[i]);
        if (dup) continue;
        hs_err e = {0};
        tried++;
        if (try_server(srv, servers[i], membership, user_id, room_id, content, &e) == 0) return 0;
        hs_info("federation: %s of %s to %s through %s failed: %s", membership, user_id, room_id,
                servers[i], e.msg);
        *err = e;
    }
    if (!tried)
        return hs_err_set(err, 404, "M_NOT_FOUND", "No known servers to %s %s through", membership,
                          room_id);
    return -1;
}

/* ---- the hooks ---- */

static int hook_join(hs_server *srv, const char *membership, const char *user_id,
                     const char *room_id, const char *const *servers, size_t n,
                     const json_t *content, hs_err *err) {
    return remote_membership(srv, membership, user_id, room_id, servers, n, content, err);
}

/* Who invited user_id to room_id (the remote membership, or our copy of
 * the room's state). */
static json_t *hook_candidates(hs_server *srv, const char *user_id, const char *room_id) {
    static db_stmt q =
        DB_STMT("SELECT '@:' || via FROM fed_remote_memberships WHERE room_id = $1 AND user_id = $2"
                " UNION ALL SELECT e.sender FROM current_state cs JOIN events e USING (event_id)"
                " WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.state_key = $2"
                " AND cs.membership = 'invite'");
    json_t *out = json_array();
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){room_id, user_id}, &err) : NULL;
    db_release(srv->db, c);
    for (int i = 0; r && i < PQntuples(r); i++)
        json_array_append_new(out, json_string(fed_id_domain(PQgetvalue(r, i, 0))));
    PQclear(r);
    return out;
}

/* The out-of-band leave Synapse makes to reject an invite locally when no
 * server of the room can be reached: signed by us, built on the invite,
 * never sent (nobody would take it), only shown to our user. */
static room_event *local_leave(hs_server *srv, const char *user_id, const char *invite_json,
                               const char *invite_id, const char *ver, hs_err *err) {
    const room_version *v = room_version_get(ver);
    json_t *inv = v ? hs_json_parse_object(invite_json, strlen(invite_json), err) : NULL;
    if (!inv) return NULL;
    json_t *ev =
        json_pack("{s:s, s:s, s:s, s:O, s:{s:s}, s:I, s:I}", "type", "m.room.member", "sender",
                  user_id, "state_key", user_id, "room_id", json_object_get(inv, "room_id"),
                  "content", "membership", "leave", "origin_server_ts", (json_int_t)hs_now_ms(),
                  "depth", json_integer_value(json_object_get(inv, "depth")) + 1);
    json_object_set_new(ev, "prev_events", fed_str_array(&invite_id, 1));
    json_object_set_new(ev, "auth_events", fed_str_array(&invite_id, 1));
    if (v->event_format == ROOM_EVFMT_V1) { /* references carry hashes there: keep it simple */
        json_object_set_new(ev, "prev_events", json_array());
        json_object_set_new(ev, "auth_events", json_array());
    }
    room_event *out = room_event_finish(v, ev, srv->cfg->server_name, &srv->key, err) == 0
                          ? room_event_parse(v, ev, err)
                          : NULL;
    json_decref(ev);
    json_decref(inv);
    return out;
}

static int hook_leave(hs_server *srv, const char *user_id, const char *room_id,
                      const json_t *content, hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT sender, event_json, event_id, room_version, via FROM fed_remote_memberships"
                " WHERE room_id = $1 AND user_id = $2 AND membership IN ('invite', 'knock')");
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){room_id, user_id}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return -1;
    if (!PQntuples(r)) return PQclear(r), 0;
    const char *servers[2] = {PQgetvalue(r, 0, 4), fed_id_domain(room_id)};
    size_t n = *servers[1] ? 2 : 1;
    hs_err e = {0};
    int rc = remote_membership(srv, "leave", user_id, room_id, servers, n, content, &e);
    if (rc < 0) {
        /* Nobody to tell (the room's servers are gone or refuse): the
         * invite or knock is dropped here all the same, as Synapse does. */
        hs_info("federation: rejecting %s in %s locally: %s", user_id, room_id, e.msg);
        room_event *leave = local_leave(srv, user_id, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
                                        PQgetvalue(r, 0, 3), err);
        rc = leave ? fed_remote_membership_store(srv, leave, user_id, "leave", NULL,
                                                 PQgetvalue(r, 0, 4), err)
                   : -1;
        room_event_free(leave);
    }
    PQclear(r);
    return rc < 0 ? -1 : 1;
}

static int hook_invite(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err) {
    return fed_invite_remote(c, srv, ev, err);
}

static int hook_alias(hs_server *srv, const char *alias, char **room_id, json_t **servers,
                      hs_err *err) {
    return fed_query_alias(srv, alias, room_id, servers, err);
}

static int hook_backfill(hs_server *srv, const char *room_id, int limit, hs_err *err) {
    return fed_backfill_room(srv, room_id, limit, err);
}

static int hook_await(hs_server *srv, const char *room_id, long timeout_ms) {
    return fed_partial_state_await(srv, room_id, timeout_ms);
}

static const client_remote_rooms hooks = {
    .await_full_state = hook_await,
    .is_partial = fed_room_is_partial,
    .alias_servers = fed_alias_servers,
    .join = hook_join,
    .leave = hook_leave,
    .join_candidates = hook_candidates,
    .invite = hook_invite,
    .alias = hook_alias,
    .backfill = hook_backfill,
};

void fed_install_client_hooks(void) { client_remote_rooms_set(&hooks); }
