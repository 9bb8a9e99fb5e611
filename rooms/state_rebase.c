/* state_rebase.c — giving a room joined with partial state its full state.
 *
 * A partial-state join (MSC3706) stores our join on top of a state that
 * lacks most m.room.member events, and every event after it inherits that
 * gap through its state groups. Once the full state before the join is
 * known, the join gets new groups, every timeline event after it is given
 * groups again in stream order (from its prev events' new groups, resolved
 * where the DAG forks), and the current state is recomputed over the forward
 * extremities, as Synapse's resync of partial-state events does. Verdicts
 * stay as they were. Events whose prev events have no state here (they came
 * with a state another server sent, which is complete) keep their groups. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"

/* New groups for ev, and the state event it replaced (unsigned.replaces_state)
 * as the full state before it says: under the partial state a member event
 * seemed to replace nothing. */
static int set_groups(db_conn *c, const room_event *ev, const room_state_map *state_before,
                      long long before, long long after, hs_err *err) {
    static db_stmt q = DB_STMT(
        "UPDATE events SET state_before = $2, state_after = $3, replaces_state = $4"
        " WHERE event_id = $1");
    char b[24], a[24];
    snprintf(b, sizeof b, "%lld", before);
    snprintf(a, sizeof a, "%lld", after);
    room_state_map *loaded = NULL;
    if (ev->state_key && !state_before && (loaded = room_state_map_new()) &&
        room_state_group_load(c, before, loaded, err) < 0) {
        room_state_map_free(loaded);
        return -1;
    }
    const room_state_map *m = state_before ? state_before : loaded;
    const char *replaces = ev->state_key && m ? room_state_map_get(m, ev->type, ev->state_key) : NULL;
    int rc = db_exec(c, &q, 4, (const char *[]){ev->event_id, b, a, replaces}, err) < 0 ? -1 : 0;
    room_state_map_free(loaded);
    return rc;
}

/* The group after ev given the group before: itself plus ev when it is an
 * accepted state event. */
static long long group_after(db_conn *c, const room_event *ev, bool rejected, long long before,
                             hs_err *err) {
    if (!ev->state_key || rejected) return before;
    return room_state_group_add_one(c, ev->room_id, before, ev->type, ev->state_key,
                                    ev->event_id, err);
}

/* The new group before ev from its prev events' groups; 0 when one of them
 * has no state here (ev keeps its groups). */
static long long group_before(db_conn *c, const room_event *ev, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT state_after FROM events WHERE event_id = ANY($1::text[])"
                               " AND NOT outlier AND state_after IS NOT NULL");
    char *arr = db_text_array((const char *const *)ev->prev_events, ev->n_prev);
    PGresult *r = arr ? db_run(c, &q, 1, (const char *[]){arr}, err) : NULL;
    free(arr);
    if (!r) return -1;
    long long first = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    bool all = ev->n_prev > 0 && (size_t)PQntuples(r) == ev->n_prev;
    PQclear(r);
    if (!all) return 0;
    if (ev->n_prev == 1) return first;
    room_state_map *res = room_state_map_new(), *parent = room_state_map_new();
    long long g = -1;
    if (res && parent &&
        room_store_state_after_events(c, ev->ver, (const char *const *)ev->prev_events,
                                      ev->n_prev, res, err) == 0 &&
        room_state_group_load(c, first, parent, err) == 0)
        g = room_state_group_store(c, ev->room_id, first, parent, res, err);
    room_state_map_free(res);
    room_state_map_free(parent);
    return g;
}

/* Every timeline event of the room after position `from`, in order. */
static int rebase_later(db_conn *c, const char *room_id, const char *from, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id, rejected_reason IS NOT NULL FROM events WHERE room_id = $1"
        " AND NOT outlier AND stream_ordering > $2 ORDER BY stream_ordering");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, from}, err);
    if (!r) return -1;
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        room_event *ev = room_store_get_event(c, PQgetvalue(r, i, 0), err);
        long long before = ev ? group_before(c, ev, err) : -1, after = 0;
        if (before < 0) rc = -1;
        else if (before > 0 &&
                 ((after = group_after(c, ev, PQgetvalue(r, i, 1)[0] == 't', before, err)) < 0 ||
                  set_groups(c, ev, NULL, before, after, err) < 0))
            rc = -1;
        room_event_free(ev);
    }
    PQclear(r);
    return rc;
}

/* current_state rows to match `state`, in two statements (the state of a
 * big room runs to thousands of members). */
static int write_current(db_conn *c, const char *room_id, const room_state_map *state,
                         hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH s(type, state_key, event_id) AS"
        "  (SELECT * FROM unnest($2::text[], $3::text[], $4::text[])),"
        " d AS (DELETE FROM current_state cs WHERE cs.room_id = $1 AND NOT EXISTS"
        "  (SELECT 1 FROM s WHERE s.type = cs.type AND s.state_key = cs.state_key))"
        " INSERT INTO current_state (room_id, type, state_key, event_id, membership, display_name)"
        " SELECT $1, s.type, s.state_key, s.event_id, m.content ->> 'membership',"
        "  CASE WHEN json_typeof(m.content -> 'displayname') = 'string'"
        "  THEN m.content ->> 'displayname' END"
        " FROM s JOIN events e USING (event_id), LATERAL (SELECT CASE WHEN s.type ="
        "  'm.room.member' THEN convert_from(e.json, 'UTF8')::json -> 'content' END) AS m(content)"
        " ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id,"
        "  membership = EXCLUDED.membership, display_name = EXCLUDED.display_name"
        "  WHERE current_state.event_id <> EXCLUDED.event_id");
    size_t n = room_state_map_count(state), it = 0, i = 0;
    const char **t = calloc(n + 1, sizeof *t), **k = calloc(n + 1, sizeof *k),
               **id = calloc(n + 1, sizeof *id);
    int rc = -1;
    if (t && k && id) {
        while (room_state_map_next(state, &it, &t[i], &k[i], &id[i])) i++;
        char *a[3] = {db_text_array(t, n), db_text_array(k, n), db_text_array(id, n)};
        if (a[0] && a[1] && a[2])
            rc = db_exec(c, &q, 4, (const char *[]){room_id, a[0], a[1], a[2]}, err) < 0 ? -1 : 0;
        else hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        for (int x = 0; x < 3; x++) free(a[x]);
    } else {
        hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    }
    free(t), free(k), free(id);
    return rc;
}

/* The current state: the state after the one forward extremity, or the
 * resolution over several. */
static int recompute_current(db_conn *c, const room_version *v, const char *room_id,
                             hs_err *err) {
    static db_stmt ext_q = DB_STMT(
        "SELECT f.event_id, e.state_after FROM room_extremities f JOIN events e USING"
        " (event_id) WHERE f.room_id = $1 AND e.state_after IS NOT NULL ORDER BY f.event_id");
    /* current_state changed: the stamp moves (sql/025). */
    static db_stmt set = DB_STMT("UPDATE rooms SET current_state_group = $2,"
                                 " state_stamp = state_stamp + 1 WHERE room_id = $1");
    PGresult *r = db_run(c, &ext_q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    size_t n = (size_t)PQntuples(r);
    if (!n) return PQclear(r), 0; /* nothing to build on: leave it */
    const char **ids = calloc(n, sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) ids[i] = PQgetvalue(r, (int)i, 0);
    long long first = atoll(PQgetvalue(r, 0, 1)), g = -1;
    room_state_map *cur = room_state_map_new(), *parent = n > 1 ? room_state_map_new() : NULL;
    if (!ids || !cur) hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    else if (n == 1) g = room_state_group_load(c, first, cur, err) == 0 ? first : -1;
    else if (parent && room_store_state_after_events(c, v, ids, n, cur, err) == 0 &&
             room_state_group_load(c, first, parent, err) == 0)
        g = room_state_group_store(c, room_id, first, parent, cur, err);
    PQclear(r);
    free(ids);
    int rc = g > 0 ? write_current(c, room_id, cur, err) : -1;
    room_state_map_free(cur);
    room_state_map_free(parent);
    if (rc < 0) return -1;
    char gs[24];
    snprintf(gs, sizeof gs, "%lld", g);
    return db_exec(c, &set, 2, (const char *[]){room_id, gs}, err) < 0 ? -1 : 0;
}

int room_store_rebase_state(db_conn *c, const char *join_event_id,
                            const room_state_map *full_before, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT stream_ordering FROM events WHERE event_id = $1"
                               " AND NOT outlier AND stream_ordering IS NOT NULL");
    room_event *join = room_store_get_event(c, join_event_id, err);
    if (!join) return -1;
    const room_version *v = NULL;
    int rc = room_store_lock_room(c, join->room_id, &v, err) < 0 ? -1 : 0;
    PGresult *r = rc == 0 ? db_run(c, &q, 1, (const char *[]){join_event_id}, err) : NULL;
    if (rc == 0 && r && !PQntuples(r))
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "%s is not in the timeline", join_event_id);
    else if (!r) rc = -1;
    long long before = -1, after = -1;
    if (rc == 0) before = room_state_group_store(c, join->room_id, 0, NULL, full_before, err);
    if (before > 0) after = group_after(c, join, join->rejected, before, err);
    if (rc == 0 && (before < 0 || after < 0 || set_groups(c, join, full_before, before, after, err) < 0 ||
                    rebase_later(c, join->room_id, PQgetvalue(r, 0, 0), err) < 0 ||
                    recompute_current(c, v, join->room_id, err) < 0))
        rc = -1;
    PQclear(r);
    room_event_free(join);
    return rc;
}
