/* pdu_checks.c — a new event of a room we are in, pushed by another server
 * (PUT /send) or pulled to fill a gap: checks on receipt, then into the room.
 *
 * The state before an event is the resolution of the states after its prev
 * events. When some prev events are missing, a pushed event first asks its
 * sender for them (get_missing_events, up to FED_MISSING_EVENTS_ASK events
 * back from it, oldest first); an event so pulled whose own prev events are
 * still missing takes the state after each missing one from the sender
 * (/state_ids, then the events we lack; state events that cannot be had
 * are left out of it, as Synapse leaves them out). A pushed event whose prev
 * events stay missing is dropped, as Synapse drops it: otherwise a server
 * could make us adopt any state by citing events nobody can check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/remote_rooms.h"
#include "homeserver/client/room_send.h"
#include "homeserver/core/log.h"
#include "homeserver/db/streams.h"
#include "rooms_internal.h"

/* ---- persisting ---------------------------------------------------------- */

typedef struct persist_job {
    hs_server *srv;
    const room_event *ev;
    const room_state_map *before;
    const fed_persist_opts *o;
    room_state_map *redone; /* the state before, worked out again after a resync */
    long long pos;
    room_verdict verdict;
    char why[400];
} persist_job;

/* The state before j->ev was worked out on a partial state that a resync
 * has replaced since: work it out again from its prev events, when all are
 * in the timeline (else the state another server gave stands). */
static int redo_state_before(db_conn *c, persist_job *j, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT count(*) FROM events WHERE event_id = ANY($1::text[])"
                               " AND NOT outlier AND state_after IS NOT NULL");
    const room_event *ev = j->ev;
    char *arr = db_text_array((const char *const *)ev->prev_events, ev->n_prev);
    PGresult *r = arr ? db_run(c, &q, 1, (const char *[]){arr}, err) : NULL;
    free(arr);
    if (!r) return -1;
    bool all = (size_t)atol(PQgetvalue(r, 0, 0)) == ev->n_prev && ev->n_prev > 0;
    PQclear(r);
    if (!all) return 0;
    room_state_map_free(j->redone);
    j->redone = room_state_map_new();
    if (!j->redone ||
        room_store_state_after_events(c, ev->ver, (const char *const *)ev->prev_events, ev->n_prev,
                                      j->redone, err) < 0)
        return -1;
    j->before = j->redone;
    return 0;
}

static int persist_txn(db_conn *c, void *arg, hs_err *err) {
    persist_job *j = arg;
    const fed_persist_opts *o = j->o;
    /* One event of a room at a time: the soft-failure check reads the
     * current state that this event may then change. */
    long long current = room_store_lock_room(c, j->ev->room_id, NULL, err);
    if (current < 0) return -1;
    int in = o->rejoin && current > 0 ? client_room_has_local_member(c, j->srv, j->ev->room_id, err)
                                      : 1;
    if (in < 0 || (in == 0 && room_store_forget_current(c, j->ev->room_id, err) < 0)) return -1;
    int partial = o->partial ? 1 : fed_room_is_partial(c, j->ev->room_id, err);
    if (partial < 0) return -1;
    if (!partial && o->state_from_partial && j->before && redo_state_before(c, j, err) < 0)
        return -1;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_EVENTS, err)) < 0) return -1;
    if (room_receive_ex(c, j->ev, j->before, partial > 0, j->pos, &j->verdict, j->why,
                        sizeof j->why, err) < 0)
        return -1;
    if (o->require_accepted && j->verdict != ROOM_ACCEPTED)
        return hs_err_set(err, 403, "M_FORBIDDEN", "%s", j->why[0] ? j->why : "not allowed");
    /* A membership another server asked us to make: we pass it on. */
    if (o->forward_except && j->verdict == ROOM_ACCEPTED &&
        fed_sender_enqueue_pdu(c, j->srv, j->ev->event_id, j->ev->room_id, j->pos,
                               o->forward_except, err) < 0)
        return -1;
    if (o->not_sent && fed_sender_mark_unsent(c, j->ev->event_id, err) < 0) return -1;
    if (o->also && j->verdict == ROOM_ACCEPTED && o->also(c, j->ev, o->also_arg, err) < 0)
        return -1;
    return client_room_event_stored(c, j->srv, j->ev, err);
}

int fed_persist_event_opts(hs_server *srv, const room_event *ev,
                           const room_state_map *state_before, const fed_persist_opts *o,
                           room_verdict *verdict, hs_err *err) {
    persist_job j = {.srv = srv, .ev = ev, .before = state_before, .o = o};
    int rc = db_txn(srv->db, persist_txn, &j, err);
    room_state_map_free(j.redone);
    if (j.pos > 0) db_stream_done(DB_STREAM_EVENTS, j.pos);
    if (rc < 0) return -1;
    if (o->forward_except && j.verdict == ROOM_ACCEPTED) fed_sender_wake_queued();
    if (verdict) *verdict = j.verdict;
    if (j.verdict == ROOM_ACCEPTED) client_room_event_committed(srv, ev);
    else
        hs_info("federation: %s %s: %s", ev->event_id,
                j.verdict == ROOM_REJECTED ? "rejected" : "soft-failed", j.why);
    return 0;
}

int fed_persist_event(hs_server *srv, const room_event *ev, const room_state_map *state_before,
                      bool require_accepted, const char *forward_except, room_verdict *verdict,
                      hs_err *err) {
    fed_persist_opts o = {.require_accepted = require_accepted, .forward_except = forward_except};
    return fed_persist_event_opts(srv, ev, state_before, &o, verdict, err);
}

/* ---- what we have -------------------------------------------------------- */

/* 1 when event_id is stored with its state (not an outlier), 0, -1. */
static int have_in_timeline(hs_server *srv, const char *event_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM events WHERE event_id = $1 AND NOT outlier");
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id}, err);
    db_release(srv->db, c);
    if (!r) return -1;
    int have = PQntuples(r) > 0;
    PQclear(r);
    return have;
}

PGresult *fed_run_ids(hs_server *srv, db_stmt *st, const char *const *ids, size_t n,
                      hs_err *err) {
    char *arr = db_text_array(ids, n);
    if (!arr) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), NULL;
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, st, 1, (const char *[]){arr}, err) : NULL;
    db_release(srv->db, c);
    free(arr);
    return r;
}

/* Which of ids are stored with their state (not outliers): have[i]. One query. */
static int in_timeline(hs_server *srv, const char *const *ids, size_t n, bool *have, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id FROM events WHERE event_id = ANY($1::text[]) AND NOT outlier");
    for (size_t i = 0; i < n; i++) have[i] = false;
    if (n == 0) return 0;
    PGresult *r = fed_run_ids(srv, &q, ids, n, err);
    if (!r) return -1;
    for (int row = 0; row < PQntuples(r); row++)
        for (size_t i = 0; i < n; i++) have[i] |= !strcmp(ids[i], PQgetvalue(r, row, 0));
    PQclear(r);
    return 0;
}

/* The prev events of ev we lack (not stored, or only as outliers); with
 * *have_ev (when not NULL) whether ev itself is stored so, in the same query. */
static int missing_prevs(hs_server *srv, const room_event *ev, char ***miss, size_t *n,
                         bool *have_ev, hs_err *err) {
    *n = 0;
    *miss = calloc(ev->n_prev + 1, sizeof **miss);
    const char **ids = calloc(ev->n_prev + 2, sizeof *ids);
    bool *have = calloc(ev->n_prev + 2, sizeof *have);
    int rc = *miss && ids && have ? 0 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < ev->n_prev; i++) ids[k++] = ev->prev_events[i];
    if (have_ev) ids[k++] = ev->event_id;
    if (rc == 0) rc = in_timeline(srv, ids, k, have, err);
    for (size_t i = 0; rc == 0 && i < ev->n_prev; i++)
        if (!have[i]) (*miss)[(*n)++] = strdup(ev->prev_events[i]);
    if (rc == 0 && have_ev) *have_ev = have[k - 1];
    free(ids);
    free(have);
    return rc;
}

/* ---- the state after an event another server has ------------------------ */

int fed_state_map_of_ids(hs_server *srv, const char *const *ids, size_t n, room_state_map *out,
                         hs_err *err) {
    static db_stmt q =
        DB_STMT("SELECT type, state_key, event_id FROM events WHERE event_id = ANY($1::text[])"
                " AND state_key IS NOT NULL AND rejected_reason IS NULL");
    PGresult *r = fed_run_ids(srv, &q, ids, n, err);
    if (!r) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = room_state_map_set(out, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
    PQclear(r);
    return rc < 0 ? hs_err_set(err, 500, "M_UNKNOWN", "out of memory") : 0;
}

const char **fed_strings_of(const json_t *a, size_t *n) {
    *n = 0;
    if (!json_is_array(a)) return NULL;
    const char **v = calloc(json_array_size(a) + 1, sizeof *v);
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (v && json_is_string(x)) v[(*n)++] = json_string_value(x);
    return v;
}

/* Fetch and store the events of ids that we lack; one that cannot be had
 * (not served, or its auth chain broken: outliers.c keeps no such event)
 * only costs a warning. 0, or -1 with err on a database failure. */
static int ensure_what_can_be_had(hs_server *srv, const char *dest, const room_version *v,
                                  const char *room_id, const char *prev_id, const char *what,
                                  const char *const *ids, size_t n, hs_err *err) {
    hs_err e = {0};
    if (fed_ensure_events(srv, dest, v, room_id, ids, n, &e) == 0) return 0;
    if (e.status != 404) return *err = e, -1;
    hs_warn("federation: the state at %s from %s goes without some %s: %s", prev_id, dest, what,
            e.msg);
    return 0;
}

/* The state after prev_id per dest: /state_ids at it (the state before it),
 * the events we lack fetched and stored as outliers, plus prev_id itself.
 * State events that cannot be had are left out, as Synapse leaves them out
 * ("missing state is a warning, not a blocker"): only an event pulled to
 * fill a gap takes this state, and it is resolved with what we hold before
 * anything is built on it. Lacking prev_id itself is an error. */
static int remote_state_after(hs_server *srv, const char *dest, const room_version *v,
                              const char *room_id, const char *prev_id, room_state_map *out,
                              hs_err *err) {
    char *base = fed_path2("/_matrix/federation/v1/state_ids", room_id, NULL);
    char *eid = fed_escape(prev_id), *path = NULL;
    if (base && eid && asprintf(&path, "%s?event_id=%s", base, eid) < 0) path = NULL;
    free(base), free(eid);
    if (!path) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    long status;
    json_t *resp = NULL;
    int rc = fed_request(srv, dest, "GET", path, NULL, &status, &resp, err);
    free(path);
    size_t n_pdu = 0, n_auth = 0;
    const char **pdu_ids = rc == 0 ? fed_strings_of(json_object_get(resp, "pdu_ids"), &n_pdu) : NULL;
    const char **auth_ids =
        rc == 0 ? fed_strings_of(json_object_get(resp, "auth_chain_ids"), &n_auth) : NULL;
    if (rc == 0 && (!pdu_ids || !auth_ids))
        rc = hs_err_set(err, 502, "M_UNKNOWN", "%s sent a bad /state_ids answer", dest);
    /* Auth chain first, so the state's events find their auth events. */
    if (rc == 0)
        rc = ensure_what_can_be_had(srv, dest, v, room_id, prev_id, "auth events", auth_ids,
                                    n_auth, err);
    if (rc == 0)
        rc = ensure_what_can_be_had(srv, dest, v, room_id, prev_id, "state events", pdu_ids, n_pdu,
                                    err);
    if (rc == 0) rc = fed_ensure_events(srv, dest, v, room_id, &prev_id, 1, err);
    if (rc == 0) rc = fed_state_map_of_ids(srv, pdu_ids, n_pdu, out, err);
    free(pdu_ids), free(auth_ids);
    json_decref(resp);
    if (rc < 0) return -1;
    /* The prev event itself, when it is an accepted state event. */
    db_conn *c = db_acquire(srv->db, err);
    room_event *prev = c ? room_store_get_event(c, prev_id, err) : NULL;
    db_release(srv->db, c);
    if (!prev) return -1;
    if (prev->state_key && !prev->rejected)
        rc = room_state_map_set(out, prev->type, prev->state_key, prev->event_id);
    room_event_free(prev);
    return rc;
}

int fed_state_before(hs_server *srv, const char *origin, const room_event *ev, bool always,
                     room_state_map **out, hs_err *err) {
    *out = NULL;
    char **miss;
    size_t n_miss;
    if (missing_prevs(srv, ev, &miss, &n_miss, NULL, err) < 0)
        return room_store_free_ids(miss, n_miss), -1;
    if (!n_miss && ev->n_prev == 1 && !always) return room_store_free_ids(miss, n_miss), 0;
    room_state_map **maps = calloc(ev->n_prev + 1, sizeof *maps);
    int rc = maps ? 0 : -1;
    db_conn *c = NULL;
    for (size_t i = 0; rc == 0 && i < ev->n_prev; i++) {
        bool remote = false;
        for (size_t k = 0; k < n_miss; k++) remote |= !strcmp(miss[k], ev->prev_events[i]);
        if (!(maps[i] = room_state_map_new())) rc = -1;
        else if (remote)
            rc = remote_state_after(srv, origin, ev->ver, ev->room_id, ev->prev_events[i], maps[i],
                                    err);
        else if ((c = db_acquire(srv->db, err)))
            rc = room_store_state_at(c, ev->prev_events[i], true, maps[i], err),
            db_release(srv->db, c);
        else rc = -1;
    }
    if (rc == 0 && (c = db_acquire(srv->db, err))) {
        *out = room_state_map_new();
        rc = room_store_resolve_states(c, ev->ver, (const room_state_map *const *)maps, ev->n_prev,
                                       *out, err);
        db_release(srv->db, c);
    } else if (rc == 0) {
        rc = -1;
    }
    for (size_t i = 0; maps && i < ev->n_prev; i++) room_state_map_free(maps[i]);
    free(maps);
    room_store_free_ids(miss, n_miss);
    if (rc < 0) room_state_map_free(*out), *out = NULL;
    return rc;
}

/* ---- pulled and pushed events -------------------------------------------- */

/* The state before (none needed when the caller knows ev's one prev event
 * is in the timeline: room_receive takes the state after it); then the auth
 * events, fetched from origin when we lack them; then into the room. */
static int receive_with_state(hs_server *srv, const char *origin, const room_event *ev,
                              bool prevs_known, hs_err *err) {
    db_conn *c = db_acquire(srv->db, err);
    int partial = c ? fed_room_is_partial(c, ev->room_id, err) : -1;
    db_release(srv->db, c);
    if (partial < 0) return -1;
    room_state_map *before = NULL;
    /* The state before first, as Synapse works out an event's context before
     * its auth: /state_ids brings most of the auth events along. */
    if (!(prevs_known && ev->n_prev == 1) &&
        fed_state_before(srv, origin, ev, false, &before, err) < 0)
        return -1;
    if (fed_ensure_events(srv, origin, ev->ver, ev->room_id, ev->auth_events, ev->n_auth, err) < 0)
        return room_state_map_free(before), -1;
    fed_persist_opts o = {.state_from_partial = partial > 0};
    int rc = fed_persist_event_opts(srv, ev, before, &o, NULL, err);
    room_state_map_free(before);
    return rc;
}

static int by_depth(const void *a, const void *b) {
    long long da = (*(room_event *const *)a)->depth, db = (*(room_event *const *)b)->depth;
    return da < db ? -1 : da > db;
}

/* POST get_missing_events from origin: the events between our forward
 * extremities and ev, received oldest first. */
static int fill_gap(hs_server *srv, const char *origin, const room_event *ev, hs_err *err) {
    char **ext = NULL;
    size_t n_ext = 0;
    db_conn *c = db_acquire(srv->db, err);
    int rc = c ? room_store_extremities(c, ev->room_id, &ext, &n_ext, NULL, err) : -1;
    db_release(srv->db, c);
    if (rc < 0) return -1;
    json_t *body = json_pack("{s:o, s:[s], s:i, s:i}", "earliest_events",
                             fed_str_array((const char *const *)ext, n_ext), "latest_events",
                             ev->event_id, "limit", FED_MISSING_EVENTS_ASK, "min_depth", 0);
    room_store_free_ids(ext, n_ext);
    char *path = fed_path2("/_matrix/federation/v1/get_missing_events", ev->room_id, NULL);
    long status;
    json_t *resp = NULL;
    rc = path ? fed_request(srv, origin, "POST", path, body, &status, &resp, err) : -1;
    free(path);
    json_decref(body);
    json_t *events = json_object_get(resp, "events");
    size_t n = 0, i;
    room_event **evs = rc == 0 ? calloc(json_array_size(events) + 1, sizeof *evs) : NULL;
    json_t *pdu;
    json_array_foreach(events, i, pdu) {
        hs_err e = {0};
        room_event *got =
            evs && n < FED_MISSING_EVENTS_MAX ? fed_event_verify(srv, ev->ver, pdu, &e) : NULL;
        if (got && !strcmp(got->room_id, ev->room_id)) evs[n++] = got;
        else if (got) room_event_free(got);
        else if (evs) hs_info("federation: a missing event from %s is unusable: %s", origin, e.msg);
    }
    json_decref(resp);
    if (n) qsort(evs, n, sizeof *evs, by_depth);
    for (i = 0; i < n; i++) {
        hs_err e = {0};
        int have = have_in_timeline(srv, evs[i]->event_id, &e);
        /* New timeline events as much as the pushed one: the same Policy
         * Server check. */
        if (have == 0 && (fed_policy_check_incoming(srv, evs[i], &e) < 0 ||
                          receive_with_state(srv, origin, evs[i], false, &e) < 0))
            hs_info("federation: missing event %s not stored: %s", evs[i]->event_id, e.msg);
        room_event_free(evs[i]);
    }
    free(evs);
    return rc;
}

/* The room of a PDU: its version (*v, NULL for a room we do not know), and
 * whether we take PDUs of it from origin (0, or -1 with err; *outside set
 * when that is because we are not in the room or do not know it). */
static int room_for(hs_server *srv, const char *origin, const char *room_id, const room_version **v,
                    bool *outside, hs_err *err) {
    *v = NULL;
    *outside = false;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    hs_err e = {0};
    *v = room_store_room_version(c, room_id, &e);
    int in = *v ? fed_server_in_room(c, room_id, srv->cfg->server_name, err) : -1;
    int acl = in > 0 ? room_acl_allows(c, room_id, origin, err) : -1;
    db_release(srv->db, c);
    if (!*v && e.status == 404) *outside = true;
    if (!*v)
        return e.status == 404 ? hs_err_set(err, 404, "M_NOT_FOUND", "Unknown room %s", room_id)
                               : (*err = e, -1);
    if (in == 0) *outside = true;
    if (in == 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "This server is not in room %s", room_id);
    if (acl == 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Server %s is banned from room %s (server ACL)",
                          origin, room_id);
    return in > 0 && acl > 0 ? 0 : -1;
}

/* Synapse's one exception to "not in the room": the inviter's leave for a
 * local user whose invite we hold (fed_remote_memberships), citing that
 * invite among its auth events, rescinds the invite. We cannot check it
 * against the room's state; the sender being the inviter is what Synapse
 * asks too. Kept as the user's remote membership, so their /sync shows the
 * room left. The event's ID (malloc'd) when it was that, else NULL with
 * err->status 0 (or set on failure). */
static char *rescinded_invite(hs_server *srv, const json_t *pdu, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id, sender, room_version, via FROM fed_remote_memberships"
        " WHERE room_id = $1 AND user_id = $2 AND membership = 'invite'");
    const char *type = json_string_value(json_object_get(pdu, "type"));
    const char *room_id = json_string_value(json_object_get(pdu, "room_id"));
    const char *sk = json_string_value(json_object_get(pdu, "state_key"));
    const char *sender = json_string_value(json_object_get(pdu, "sender"));
    const char *m = json_string_value(json_object_get(json_object_get(pdu, "content"), "membership"));
    if (!type || strcmp(type, "m.room.member") || !room_id || !sk || !sender || !strcmp(sk, sender) ||
        !m || strcmp(m, "leave") || !fed_user_of(sk, srv->cfg->server_name))
        return NULL;
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){room_id, sk}, err) : NULL;
    db_release(srv->db, c);
    if (!r || PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 1), sender) != 0) return PQclear(r), NULL;
    const room_version *v = room_version_get(PQgetvalue(r, 0, 2));
    room_event *ev = v ? fed_event_verify(srv, v, pdu, err) : NULL;
    bool cites = false;
    for (size_t i = 0; ev && i < ev->n_auth && !cites; i++)
        cites = !strcmp(ev->auth_events[i], PQgetvalue(r, 0, 0));
    char *id = NULL;
    if (cites && fed_remote_membership_store(srv, ev, sk, "leave", NULL, PQgetvalue(r, 0, 3), err) == 0)
        id = strdup(ev->event_id);
    room_event_free(ev);
    PQclear(r);
    return id;
}

/* The event ID of a PDU before anything else is checked, to key its result. */
char *fed_pdu_event_id(const room_version *v, const json_t *pdu) {
    const char *id = json_string_value(json_object_get(pdu, "event_id"));
    if (v && v->event_format != ROOM_EVFMT_V1) {
        hs_err e = {0};
        return room_event_compute_id(v, pdu, &e);
    }
    return id ? strdup(id) : NULL;
}

int fed_receive_pdu(hs_server *srv, const char *origin, const json_t *pdu, char **event_id,
                    hs_err *err) {
    *event_id = NULL;
    const char *room_id = json_string_value(json_object_get(pdu, "room_id"));
    if (!json_is_object(pdu) || !room_id)
        return hs_err_set(err, 400, "M_BAD_JSON", "A PDU needs a room_id");
    const room_version *v = NULL;
    bool outside;
    int ok = room_for(srv, origin, room_id, &v, &outside, err);
    if (ok < 0 && outside) {
        hs_err e = {0};
        if ((*event_id = rescinded_invite(srv, pdu, &e))) return 0;
        if (e.status) hs_info("federation: a rescinded invite? %s", e.msg);
    }
    *event_id = fed_pdu_event_id(v, pdu);
    if (ok < 0) return -1;
    room_event *ev = fed_event_verify(srv, v, pdu, err);
    if (!ev) return -1;
    char **miss;
    size_t n_miss;
    bool have = false;
    int rc = missing_prevs(srv, ev, &miss, &n_miss, &have, err);
    if (rc < 0 || have) {
        room_store_free_ids(miss, n_miss);
        room_event_free(ev);
        return rc < 0 ? -1 : 0;
    }
    /* New to us: in a room with a Policy Server, is it recommended? */
    if (fed_policy_check_incoming(srv, ev, err) < 0) {
        room_store_free_ids(miss, n_miss);
        room_event_free(ev);
        return -1;
    }
    if (n_miss) {
        hs_err gap = {0};
        if (fill_gap(srv, origin, ev, &gap) < 0)
            hs_info("federation: get_missing_events for %s from %s: %s", ev->event_id, origin,
                    gap.msg);
        room_store_free_ids(miss, n_miss);
        rc = missing_prevs(srv, ev, &miss, &n_miss, NULL, err);
        if (rc == 0 && n_miss) {
            /* Dropped, as Synapse drops it. Synapse handles a pushed PDU
             * after it has answered the /send, so whatever becomes of it its
             * sender reads {}; ours does too (a sender can do nothing about
             * events it will not serve), and our log says why. */
            hs_warn("federation: dropping PDU %s from %s: %zu of its prev events (%s) cannot "
                    "be had",
                    ev->event_id, origin, n_miss, miss[0]);
            room_store_free_ids(miss, n_miss);
            room_event_free(ev);
            return 0;
        }
    }
    room_store_free_ids(miss, n_miss);
    if (rc == 0) rc = receive_with_state(srv, origin, ev, true, err);
    room_event_free(ev);
    return rc;
}
