/* incoming.c — the checks on receipt of a PDU from another server, and
 * persisting it with its verdict.
 *
 * In the spec's order: against its own auth events (else rejected), against
 * the state before it (else rejected), against the current state (else soft
 * failed: stored, but it neither changes the current state nor becomes an
 * extremity, so nobody builds on it). History pulled by backfill skips the
 * last check: it is older than the current state by construction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms.h"
#include "state_lookup.h"

static int load_auth(db_conn *c, const room_event *ev, room_event **out, size_t *n,
                     hs_err *err) {
    *n = 0;
    if (room_store_get_events(c, ev->auth_events, ev->n_auth, out, err) < 0) {
        if (err->status == 404)
            hs_err_set(err, 404, "M_NOT_FOUND", "an auth event of %s is not stored (%s)",
                       ev->event_id, err->msg);
        return -1;
    }
    *n = ev->n_auth;
    return 0;
}

/* The common case of a room's life: ev's one prev event is the room's one
 * forward extremity and the current state is the state after it, so the
 * state before ev is the current state. 1 with *current (the group), 0, -1. */
static int extends_current(db_conn *c, const room_event *ev, long long *current, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT f.event_id, e.state_after, r.current_state_group FROM room_extremities f"
        " JOIN events e USING (event_id) JOIN rooms r ON r.room_id = f.room_id"
        " WHERE f.room_id = $1 LIMIT 2");
    if (ev->n_prev != 1) return 0;
    PGresult *r = db_run(c, &q, 1, (const char *[]){ev->room_id}, err);
    if (!r) return -1;
    int yes = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), ev->prev_events[0]) &&
              !PQgetisnull(r, 0, 1) && !PQgetisnull(r, 0, 2) &&
              atoll(PQgetvalue(r, 0, 2)) > 0 && !strcmp(PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
    if (yes) *current = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    return yes;
}

/* Whether the current state holds exactly ev's auth events at every key its
 * auth events selection names (none where it cites none): then checking ev
 * against the current state decides as its auth events did. 1, 0, -1. */
static int auth_events_are_current(db_conn *c, const room_event *ev, room_event **auth,
                                   size_t n_auth, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.type, cs.state_key, cs.event_id FROM current_state cs"
        " JOIN unnest($2::text[], $3::text[]) AS k(type, state_key)"
        "  ON cs.type = k.type AND cs.state_key = k.state_key WHERE cs.room_id = $1");
    room_state_key keys[16];
    size_t nk = room_auth_types_for_event(ev->ver, ev->json, keys, 16);
    const char *types[16], *sks[16];
    for (size_t i = 0; i < nk; i++) types[i] = keys[i].type, sks[i] = keys[i].state_key;
    char *ta = db_text_array(types, nk), *sa = db_text_array(sks, nk);
    PGresult *r = ta && sa ? db_run(c, &q, 3, (const char *[]){ev->room_id, ta, sa}, err) : NULL;
    free(ta);
    free(sa);
    if (!r) return ta && sa ? -1 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    /* Every current entry must be a cited event and every cited event current
     * (all cited events are of the selection: room_auth_check_auth_events). */
    int same = 1;
    for (int row = 0; row < PQntuples(r) && same; row++) {
        bool found = false;
        for (size_t i = 0; i < n_auth && !found; i++)
            found = !strcmp(auth[i]->event_id, PQgetvalue(r, row, 2));
        same = found;
    }
    for (size_t i = 0; i < n_auth && same; i++) {
        bool found = false;
        for (int row = 0; row < PQntuples(r) && !found; row++)
            found = !strcmp(auth[i]->event_id, PQgetvalue(r, row, 2));
        same = found;
    }
    PQclear(r);
    return same;
}

/* Check ev against a lookup; -1 on a database failure, else 0 with *ok. */
static int check(const room_event *ev, room_lookup *l, bool *ok, char *why, size_t why_len,
                 hs_err *err) {
    hs_err deny = {0};
    *ok = room_auth_check(ev, room_lookup_get, l, &deny) == 0;
    if (l->failed) return *err = l->err, room_lookup_clear(l), -1;
    if (!*ok && why) snprintf(why, why_len, "%s", deny.msg);
    room_lookup_clear(l);
    return 0;
}

/* A partial-state room (a join with omit_members whose full state has not
 * arrived) lacks most member events: a state there is completed with the
 * event's own auth events for the keys it lacks, so a sender whose
 * membership we have not seen yet is judged by the membership its event
 * cites (which passed the auth-events check), not refused for a gap of
 * ours. Keys the state has are judged by the state as usual. NULL on OOM. */
static room_state_map *with_auth_events(const room_state_map *state, room_event **auth,
                                        size_t n_auth) {
    room_state_map *m = state ? room_state_map_copy(state) : room_state_map_new();
    for (size_t i = 0; m && i < n_auth; i++)
        if (auth[i]->state_key && !room_state_map_get(m, auth[i]->type, auth[i]->state_key) &&
            room_state_map_set(m, auth[i]->type, auth[i]->state_key, auth[i]->event_id) < 0)
            room_state_map_free(m), m = NULL;
    return m;
}

/* The soft-failure check of a partial-state room: the current state
 * completed with the auth events (with_auth_events). */
static int check_partial_current(db_conn *c, const room_event *ev, room_event **auth,
                                 size_t n_auth, bool *ok, char *why, size_t why_len, hs_err *err) {
    room_state_map *cur = room_state_map_new(), *aug = NULL;
    if (!cur || room_store_current_state(c, ev->room_id, cur, err) < 0 ||
        !(aug = with_auth_events(cur, auth, n_auth))) {
        room_state_map_free(cur);
        return err->status ? -1 : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    }
    room_lookup l = {.c = c, .room_id = ev->room_id, .map = aug};
    int rc = check(ev, &l, ok, why, why_len, err);
    room_state_map_free(aug);
    room_state_map_free(cur);
    return rc;
}

/* The first checks, against the event's own auth events: *ok false when
 * they reject it (why says so). 0, or -1 on a database failure. */
static int check_own(db_conn *c, const room_event *ev, room_event **auth, size_t n_auth,
                     bool *ok, char *why, size_t why_len, hs_err *err) {
    hs_err deny = {0};
    if (room_auth_check_auth_events(ev, (const room_event *const *)auth, n_auth, &deny) < 0) {
        if (why) snprintf(why, why_len, "%s", deny.msg);
        return *ok = false, 0;
    }
    room_lookup own = {.c = c, .room_id = ev->room_id, .set = (const room_event *const *)auth,
                       .n_set = n_auth};
    return check(ev, &own, ok, why, why_len, err);
}

static int verdict_for(db_conn *c, const room_event *ev, const room_state_map *state_before,
                       bool partial, room_event **auth, size_t n_auth, bool history,
                       room_verdict *v, char *why, size_t why_len, hs_err *err) {
    bool ok;
    if (check_own(c, ev, auth, n_auth, &ok, why, why_len, err) < 0) return -1;
    if (!ok) return *v = ROOM_REJECTED, 0;
    room_state_map *prev_state = NULL;
    if (!state_before && strcmp(ev->type, "m.room.create") != 0) {
        prev_state = room_state_map_new();
        if (ev->n_prev != 1 || room_store_state_at(c, ev->prev_events[0], true, prev_state, err) < 0) {
            room_state_map_free(prev_state);
            if (ev->n_prev != 1)
                hs_err_set(err, 400, "M_BAD_JSON", "the state before %s must be given", ev->event_id);
            return -1;
        }
        state_before = prev_state;
    }
    if (state_before) {
        room_state_map *aug = partial ? with_auth_events(state_before, auth, n_auth) : NULL;
        if (partial && !aug) {
            room_state_map_free(prev_state);
            return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        }
        room_lookup st = {.c = c, .room_id = ev->room_id, .map = aug ? aug : state_before};
        int rc = check(ev, &st, &ok, why, why_len, err);
        room_state_map_free(aug);
        room_state_map_free(prev_state);
        if (rc < 0) return -1;
        if (!ok) return *v = ROOM_REJECTED, 0;
    }
    room_lookup cur = {.c = c, .room_id = ev->room_id, .current = true};
    /* The room's past is not judged by its present. */
    if (history || strcmp(ev->type, "m.room.create") == 0) return *v = ROOM_ACCEPTED, 0;
    /* A room joined over federation has no current state until its first
     * event (our join) is in: the state before that event is all we know. */
    long long current = room_store_lock_room(c, ev->room_id, NULL, err);
    if (current < 0) return -1;
    if (current == 0) return *v = ROOM_ACCEPTED, 0;
    if (partial) {
        if (check_partial_current(c, ev, auth, n_auth, &ok, why, why_len, err) < 0) return -1;
    } else if (check(ev, &cur, &ok, why, why_len, err) < 0) {
        return -1;
    }
    *v = ok ? ROOM_ACCEPTED : ROOM_SOFT_FAILED;
    return 0;
}

/* The verdict when the state before ev is the current state: rejected or
 * accepted (there is nothing to soft-fail against). */
static int verdict_linear(db_conn *c, const room_event *ev, room_event **auth, size_t n_auth,
                          room_verdict *v, char *why, size_t why_len, hs_err *err) {
    bool ok;
    if (check_own(c, ev, auth, n_auth, &ok, why, why_len, err) < 0) return -1;
    if (!ok) return *v = ROOM_REJECTED, 0;
    int same = auth_events_are_current(c, ev, auth, n_auth, err);
    if (same < 0) return -1;
    if (!same) {
        room_lookup cur = {.c = c, .room_id = ev->room_id, .current = true};
        if (check(ev, &cur, &ok, why, why_len, err) < 0) return -1;
    }
    *v = ok ? ROOM_ACCEPTED : ROOM_REJECTED;
    return 0;
}

static int receive(db_conn *c, const room_event *ev, const room_state_map *state_before,
                   bool partial, long long stream_ordering, bool history,
                   room_verdict *verdict, char *why, size_t why_len, hs_err *err) {
    room_event *auth[32];
    size_t n_auth = 0;
    long long current = 0;
    int linear = 0;
    if (why && why_len) *why = 0;
    if (ev->n_auth > 32) {
        *verdict = ROOM_REJECTED;
        if (why) snprintf(why, why_len, "too many auth events");
    } else if (load_auth(c, ev, auth, &n_auth, err) < 0 ||
               /* A partial state lacks entries the fast path would read as
                * absent: partial rooms take the general path. */
               (!state_before && !history && !partial && strcmp(ev->type, "m.room.create") != 0 &&
                (linear = extends_current(c, ev, &current, err)) < 0) ||
               (linear ? verdict_linear(c, ev, auth, n_auth, verdict, why, why_len, err)
                       : verdict_for(c, ev, state_before, partial, auth, n_auth, history, verdict,
                                     why, why_len, err)) < 0) {
        for (size_t i = 0; i < n_auth; i++) room_event_free(auth[i]);
        return -1;
    }
    for (size_t i = 0; i < n_auth; i++) room_event_free(auth[i]);
    /* Not recommended by the room's Policy Server (policy_server.h): still
     * judged by the auth rules, and soft-failed if it passes them; history
     * too (backfill), as Synapse does: soft-failed events are not shown. */
    if (ev->policy_refused && *verdict == ROOM_ACCEPTED) {
        *verdict = ROOM_SOFT_FAILED;
        if (why) snprintf(why, why_len, "not signed by the room's policy server");
    }
    room_persist_item it = {ev, false, *verdict == ROOM_SOFT_FAILED,
                            *verdict == ROOM_REJECTED ? (why && *why ? why : "rejected") : NULL,
                            state_before, linear ? current : 0, stream_ordering,
                            linear && *verdict == ROOM_ACCEPTED, false, history};
    return room_store_persist(c, &it, 1, err);
}

int room_receive(db_conn *c, const room_event *ev, const room_state_map *state_before,
                 long long stream_ordering, room_verdict *verdict, char *why, size_t why_len,
                 hs_err *err) {
    return receive(c, ev, state_before, false, stream_ordering, false, verdict, why, why_len, err);
}

int room_receive_ex(db_conn *c, const room_event *ev, const room_state_map *state_before,
                    bool partial, long long stream_ordering, room_verdict *verdict, char *why,
                    size_t why_len, hs_err *err) {
    return receive(c, ev, state_before, partial, stream_ordering, false, verdict, why, why_len,
                   err);
}

int room_receive_history(db_conn *c, const room_event *ev, const room_state_map *state_before,
                         long long stream_ordering, room_verdict *verdict, char *why,
                         size_t why_len, hs_err *err) {
    return receive(c, ev, state_before, false, stream_ordering, true, verdict, why, why_len, err);
}
