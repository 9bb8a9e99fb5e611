/* events_read.c — loading stored events and formatting them for clients. */
#include "events_read.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "relations.h"

/* Top-level PDU keys a client sees (the rest is federation's). */
static const char *const client_keys[] = {"content", "origin_server_ts", "sender", "state_key",
                                          "type", "redacts", NULL};

json_t *client_event_format(const char *event_id, const json_t *pdu, const room_version *v,
                            const json_t *redaction, const char *redaction_id,
                            bool with_room_id, long long now) {
    return client_event_format_state(event_id, pdu, v, redaction, redaction_id, NULL, NULL,
                                     with_room_id, now);
}

json_t *client_event_format_state(const char *event_id, const json_t *pdu, const room_version *v,
                                  const json_t *redaction, const char *redaction_id,
                                  const char *replaces, const json_t *prev,
                                  bool with_room_id, long long now) {
    json_t *src = redaction ? room_event_redact(v, pdu) : json_incref((json_t *)pdu);
    json_t *o = json_object();
    for (const char *const *k = client_keys; *k; k++) {
        json_t *val = json_object_get(src, *k);
        if (val) json_object_set(o, *k, val);
    }
    /* v11 moved "redacts" into content; clients still read it at the top
     * level too, so copy it there as Synapse does. */
    json_t *rd = json_object_get(json_object_get(src, "content"), "redacts");
    if (!json_object_get(o, "redacts") && json_is_string(rd) &&
        !strcmp(json_string_value(json_object_get(src, "type")), "m.room.redaction"))
        json_object_set(o, "redacts", rd);
    json_object_set_new(o, "event_id", json_string(event_id));
    json_t *rid = json_object_get(pdu, "room_id");
    if (with_room_id && rid) {
        json_object_set(o, "room_id", rid);
    } else if (with_room_id && event_id[0] == '$') {
        /* A v12 create event carries no room_id: its ID names the room. */
        char *room = strdup(event_id);
        room[0] = '!';
        json_object_set_new(o, "room_id", json_string(room));
        free(room);
    }
    json_t *uns = json_object();
    long long ts = json_integer_value(json_object_get(pdu, "origin_server_ts"));
    json_object_set_new(uns, "age", json_integer(now > ts ? now - ts : 0));
    if (redaction) {
        json_t *because = client_event_format(redaction_id, redaction, v, NULL, NULL, with_room_id, now);
        json_object_set_new(uns, "redacted_because", because);
        /* And the redaction's ID alone, as Synapse adds it (SyTest reads it). */
        json_object_set_new(uns, "redacted_by", json_string(redaction_id));
    }
    /* A state event names the state it replaced (v1.19) and, as Synapse
     * does, gives that event's content (redacted if it was) and sender:
     * clients compare them to tell what changed and who changed it before. */
    if (replaces && json_object_get(pdu, "state_key")) {
        json_object_set_new(uns, "replaces_state", json_string(replaces));
        json_t *pc = json_object_get(prev, "content"), *ps = json_object_get(prev, "sender");
        if (json_is_object(pc)) json_object_set(uns, "prev_content", pc);
        if (json_is_string(ps)) json_object_set(uns, "prev_sender", ps);
    }
    json_object_set_new(o, "unsigned", uns);
    json_decref(src);
    return o;
}

/* The replaced state event (column 7, its PDU; column 8, whether a
 * redaction of it applies), redacted if it was, or NULL. New reference. */
static json_t *prev_event(PGresult *r, int i, const room_version *v) {
    if (PQgetisnull(r, i, 7)) return NULL;
    hs_err err = {0};
    json_t *prev = hs_json_parse(PQgetvalue(r, i, 7), (size_t)PQgetlength(r, i, 7), &err);
    if (!prev) return NULL;
    if (PQgetvalue(r, i, 8)[0] == 't') {
        json_t *red = room_event_redact(v, prev);
        json_decref(prev);
        prev = red;
    }
    return prev;
}

/* Columns: event_id, json, stream_ordering, room_version, redaction id,
 * redaction json, replaced state event ID, its json, whether it is redacted. */
static json_t *row_event(PGresult *r, int i, bool with_room_id, bool erased, long long now) {
    const room_version *v = room_version_get(PQgetvalue(r, i, 3));
    hs_err err = {0};
    json_t *pdu = hs_json_parse(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &err);
    if (!pdu || !v) return json_decref(pdu), NULL;
    if (erased && PQgetisnull(r, i, 5)) {
        json_t *pruned = room_event_redact(v, pdu);
        json_decref(pdu);
        if (!(pdu = pruned)) return NULL;
    }
    json_t *red = NULL;
    if (!PQgetisnull(r, i, 5))
        red = hs_json_parse(PQgetvalue(r, i, 5), (size_t)PQgetlength(r, i, 5), &err);
    const char *replaces = PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6);
    json_t *prev = replaces ? prev_event(r, i, v) : NULL;
    json_t *o = client_event_format_state(PQgetvalue(r, i, 0), pdu, v, red,
                                          red ? PQgetvalue(r, i, 4) : NULL, replaces, prev,
                                          with_room_id, now);
    json_decref(pdu);
    json_decref(red);
    json_decref(prev);
    return o;
}

#define APPLIES(X, T) \
    " (" X ".applies OR (" X ".applies IS NULL AND" \
    "   split_part(" X "e.sender, ':', 2) = split_part(" T ".sender, ':', 2)))"
#define EVENT_COLS \
    "e.event_id, convert_from(e.json, 'UTF8'), e.stream_ordering, r.room_version,"    \
    " rd.event_id, convert_from(rd.json, 'UTF8'), e.replaces_state,"                     \
    " convert_from(pe.json, 'UTF8'), pe.event_id IS NOT NULL AND EXISTS (SELECT 1"        \
    "  FROM redactions y JOIN events ye ON ye.event_id = y.event_id"                      \
    "  WHERE y.redacts = pe.event_id AND" APPLIES("y", "pe") ")"
#define EVENT_JOINS \
    " JOIN rooms r USING (room_id) LEFT JOIN LATERAL (" \
    "  SELECT x.event_id, xe.json FROM redactions x JOIN events xe ON xe.event_id = x.event_id" \
    "  WHERE x.redacts = e.event_id AND" APPLIES("x", "e") \
    "  ORDER BY xe.stream_ordering LIMIT 1) rd ON true" \
    " LEFT JOIN events pe ON pe.event_id = e.replaces_state"
#define ACCEPTED " AND NOT e.outlier AND e.rejected_reason IS NULL AND NOT e.soft_failed"

/* Columns 9-18 when a viewer is given: what visible() needs (V is the
 * viewer's parameter), then sender, state_key, type, whether the event
 * has children to bundle (relations.h), the transaction ID the viewer's
 * device (parameter D) sent it with, whether the sender asked for
 * erasure (sql/004 users.erased), and whether the event is the room's
 * current state at its key. A backfilled event (negative position)
 * carries the visibility of its own state: the visibility event may be
 * older than anything pulled yet. */
#define VISIBILITY_COLS(V, D) \
    ", CASE WHEN e.stream_ordering < 0 THEN e.history_visibility_at ELSE" \
    "  (SELECT convert_from(h.json, 'UTF8')::json->'content'->>'history_visibility'" \
    "   FROM events h WHERE h.room_id = e.room_id AND h.type = 'm.room.history_visibility'" \
    "   AND h.state_key = '' AND h.stream_ordering < e.stream_ordering" \
    "   AND h.rejected_reason IS NULL AND NOT h.soft_failed ORDER BY h.stream_ordering DESC LIMIT 1)" \
    "  END," \
    " (SELECT m.membership FROM (SELECT convert_from(x.json, 'UTF8')::json->'content'->>'membership'" \
    "   AS membership, x.stream_ordering FROM events x WHERE x.room_id = e.room_id" \
    "   AND x.type = 'm.room.member' AND x.state_key = " V " AND x.stream_ordering <= e.stream_ordering" \
    "   AND x.rejected_reason IS NULL AND NOT x.soft_failed ORDER BY x.stream_ordering DESC LIMIT 1) m)," \
    " (SELECT cs.membership FROM current_state cs WHERE cs.room_id = e.room_id" \
    "   AND cs.type = 'm.room.member' AND cs.state_key = " V ")," \
    " e.sender, e.state_key, e.type," \
    " EXISTS (SELECT 1 FROM event_relations rl WHERE rl.relates_to_id = e.event_id)," \
    " (SELECT t.txn_id FROM event_txn_ids t WHERE t.event_id = e.event_id" \
    "   AND t.user_id = " V " AND t.device_id = " D ")," \
    " EXISTS (SELECT 1 FROM users eu WHERE eu.user_id = e.sender AND eu.erased)," \
    " e.state_key IS NOT NULL AND EXISTS (SELECT 1 FROM current_state k" \
    "   WHERE k.room_id = e.room_id AND k.type = e.type AND k.state_key = e.state_key" \
    "   AND k.event_id = e.event_id)"

/* History visibility per the spec's rules, given the visibility in force at
 * the event, the viewer's membership then, and their membership now. An
 * event about the viewer's own membership is always theirs to see. */
static bool visible(const char *hv, const char *then, const char *now) {
    if (!hv || !*hv) hv = "shared";
    if (!strcmp(hv, "world_readable")) return true;
    bool joined_then = then && !strcmp(then, "join");
    if (!strcmp(hv, "shared")) return joined_then || (now && !strcmp(now, "join"));
    if (!strcmp(hv, "invited")) return joined_then || (then && !strcmp(then, "invite"));
    return joined_then; /* "joined", and any unknown value */
}

/* How much a visibility hides, least first; unknown values as "joined"
 * (what visible() makes of them). */
static int hv_rank(const char *hv) {
    if (!hv || !*hv || !strcmp(hv, "shared")) return 1;
    if (!strcmp(hv, "world_readable")) return 0;
    return !strcmp(hv, "invited") ? 2 : 3;
}

/* Rows with the viewer columns: may viewer see row i? A change of history
 * visibility is judged by the less restrictive of the old and the new
 * value, as Synapse does ("history_visibility changes on boundaries"):
 * whoever may see what comes after it, or what came before, sees it. */
static bool row_visible(PGresult *r, int i, const char *viewer, bool current_state_shown) {
    const char *type = PQgetvalue(r, i, 14);
    bool own = !strcmp(type, "m.room.member") && !strcmp(PQgetvalue(r, i, 13), viewer);
    if (current_state_shown && PQgetvalue(r, i, 18)[0] == 't') return true;
    const char *hv = PQgetisnull(r, i, 9) ? NULL : PQgetvalue(r, i, 9);
    const char *then = PQgetisnull(r, i, 10) ? NULL : PQgetvalue(r, i, 10);
    const char *cur = PQgetisnull(r, i, 11) ? NULL : PQgetvalue(r, i, 11);
    if (own || visible(hv, then, cur)) return true;
    if (strcmp(type, "m.room.history_visibility") || PQgetisnull(r, i, 13) ||
        *PQgetvalue(r, i, 13))
        return false;
    hs_err err = {0};
    json_t *pdu = hs_json_parse(PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &err);
    const char *nv = json_string_value(
        json_object_get(json_object_get(pdu, "content"), "history_visibility"));
    bool yes = nv && hv_rank(nv) < hv_rank(hv) && visible(nv, then, cur);
    json_decref(pdu);
    return yes;
}

/* What the viewer's rows tell about the viewer (v1.11, MSC4115; the
 * client event's unsigned): their membership at the event ("leave" when
 * they had none, as Synapse says), and the transaction ID when their
 * device sent it. */
static void add_viewer_unsigned(PGresult *r, int i, json_t *ev) {
    json_t *uns = json_object_get(ev, "unsigned");
    const char *then = PQgetisnull(r, i, 10) ? "leave" : PQgetvalue(r, i, 10);
    json_object_set_new(uns, "membership", json_string(then));
    if (!PQgetisnull(r, i, 16))
        json_object_set_new(uns, "transaction_id", json_string(PQgetvalue(r, i, 16)));
}

/* A timeline read's own options (client_room_timeline_for): the events
 * keep refuses are not appended; pos (when not NULL) receives the position
 * of each event appended, in order; topo (when not NULL) reads backwards
 * in topological order, (depth, position) below topo[0..1], and leaves
 * there the last row's. */
typedef struct sieve {
    client_event_keep keep;
    void *ctx;
    long long *pos;
    long long *topo;
} sieve;

/* Append rows 0..n-1 (in reverse when backwards, so chronologically) in
 * client format. With a viewer: only what they may see, with what concerns
 * them in unsigned, and the bundled aggregations of those that have
 * children (one batch for all of them). */
static int append_rows(db_conn *c, PGresult *r, int n, bool backwards, const char *viewer,
                       bool current_state_shown, bool with_room_id, const sieve *sv, json_t *out,
                       hs_err *err) {
    long long now = hs_now_ms();
    size_t first = json_array_size(out);
    bool *children = calloc((size_t)n + 1, sizeof *children), any = false;
    for (int k = 0; k < n; k++) {
        int i = backwards ? n - 1 - k : k;
        if (viewer && !row_visible(r, i, viewer, current_state_shown)) continue;
        /* An erased user's events (deactivated with erase, spec): served
         * redacted to whoever was not joined when they were sent, as
         * Synapse judges "joined after the erasure". */
        bool erased = viewer && PQgetvalue(r, i, 17)[0] == 't' &&
                      (PQgetisnull(r, i, 10) || strcmp(PQgetvalue(r, i, 10), "join") != 0);
        json_t *ev = row_event(r, i, with_room_id, erased, now);
        if (!ev) continue;
        if (viewer) add_viewer_unsigned(r, i, ev);
        if (sv && sv->keep && !sv->keep(ev, sv->ctx)) {
            json_decref(ev);
            continue;
        }
        if (sv && sv->pos) sv->pos[json_array_size(out) - first] = atoll(PQgetvalue(r, i, 2));
        if (viewer && PQgetvalue(r, i, 15)[0] == 't') children[json_array_size(out) - first] = any = true;
        json_array_append_new(out, ev);
    }
    int rc = any ? client_relations_bundle(c, viewer, out, first, children, err) : 0;
    free(children);
    return rc;
}

static int room_events(db_conn *c, const char *viewer, const char *device, const char *room_id,
                       long long after, long long upto, int limit, bool backwards,
                       bool current_state_shown, bool with_room_id, const sieve *sv, json_t *out,
                       bool *more, long long *edge, hs_err *err) {
    static db_stmt back = DB_STMT(
        "SELECT " EVENT_COLS " FROM events e" EVENT_JOINS
        " WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3" ACCEPTED
        " ORDER BY e.stream_ordering DESC LIMIT $4");
    static db_stmt fwd = DB_STMT(
        "SELECT " EVENT_COLS " FROM events e" EVENT_JOINS
        " WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3" ACCEPTED
        " ORDER BY e.stream_ordering ASC LIMIT $4");
    static db_stmt vback = DB_STMT(
        "SELECT " EVENT_COLS VISIBILITY_COLS("$5", "$6") " FROM events e" EVENT_JOINS
        " WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3" ACCEPTED
        " ORDER BY e.stream_ordering DESC LIMIT $4");
    static db_stmt vfwd = DB_STMT(
        "SELECT " EVENT_COLS VISIBILITY_COLS("$5", "$6") " FROM events e" EVENT_JOINS
        " WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3" ACCEPTED
        " ORDER BY e.stream_ordering ASC LIMIT $4");
    /* Column 19: the depth, for the next page's bound. */
    static db_stmt vtopo = DB_STMT(
        "SELECT " EVENT_COLS VISIBILITY_COLS("$5", "$6") ", e.depth FROM events e" EVENT_JOINS
        " WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3" ACCEPTED
        " AND (e.depth, e.stream_ordering) < ($7::bigint, $8::bigint)"
        " ORDER BY e.depth DESC, e.stream_ordering DESC LIMIT $4");
    char a[24], u[24], l[16], td[24], ts[24];
    snprintf(a, sizeof a, "%lld", after);
    snprintf(u, sizeof u, "%lld", upto);
    snprintf(l, sizeof l, "%d", limit + 1);
    bool topo = viewer && backwards && sv && sv->topo;
    if (topo) {
        snprintf(td, sizeof td, "%lld", sv->topo[0]);
        snprintf(ts, sizeof ts, "%lld", sv->topo[1]);
    }
    db_stmt *st = topo ? &vtopo : viewer ? (backwards ? &vback : &vfwd) : (backwards ? &back : &fwd);
    PGresult *r = db_run(c, st, topo ? 8 : viewer ? 6 : 4,
                         (const char *[]){room_id, a, u, l, viewer, device, td, ts}, err);
    if (!r) return -1;
    int n = PQntuples(r);
    *more = n > limit;
    if (n > limit) n = limit;
    int rc = append_rows(c, r, n, backwards, viewer, current_state_shown, with_room_id, sv, out,
                         err);
    if (n > 0) *edge = atoll(PQgetvalue(r, n - 1, 2));
    if (n > 0 && topo)
        sv->topo[0] = atoll(PQgetvalue(r, n - 1, 19)), sv->topo[1] = *edge;
    PQclear(r);
    return rc;
}

int client_room_events(db_conn *c, const char *room_id, long long after, long long upto,
                       int limit, bool backwards, bool with_room_id, json_t *out, bool *more,
                       long long *edge, hs_err *err) {
    return room_events(c, NULL, NULL, room_id, after, upto, limit, backwards, false, with_room_id,
                       NULL, out, more, edge, err);
}

int client_room_events_for(db_conn *c, const char *viewer, const char *device,
                           const char *room_id, long long after, long long upto, int limit,
                           bool backwards, bool with_room_id, json_t *out, bool *more,
                           long long *edge, hs_err *err) {
    return room_events(c, viewer, device, room_id, after, upto, limit, backwards, false,
                       with_room_id, NULL, out, more, edge, err);
}

/* Rounds of older events read when history visibility or the caller's
 * filter hid some of the newest (Synapse's sync reads up to 5 more batches
 * of twice the limit). */
#define TIMELINE_ROUNDS 10

int client_room_timeline_for(db_conn *c, const char *viewer, const char *device,
                             const char *room_id, long long after, long long upto, int limit,
                             bool topological, client_event_keep keep, void *keep_ctx,
                             bool with_room_id, json_t *out, bool *more, long long *edge,
                             hs_err *err) {
    /* Unfiltered, each round reads exactly what is missing; filtered, more
     * at a time (the filter may refuse most), the surplus cut below. */
    int read = keep ? (2 * limit > 10 ? 2 * limit : 10) : limit;
    json_t *got = json_array(); /* chronological, the newest batch last */
    /* Filtered: the positions of got's events, at the end of pos. */
    size_t cap = keep ? (size_t)TIMELINE_ROUNDS * (size_t)read : 0;
    long long *pos = keep ? calloc(cap, sizeof *pos) : NULL;
    long long *bpos = keep ? calloc((size_t)read, sizeof *bpos) : NULL;
    long long topo[2] = {LLONG_MAX, LLONG_MAX}; /* the next page's bound, topologically */
    int rc = 0;
    *more = false;
    for (int round = 0; round < TIMELINE_ROUNDS; round++) {
        int need = limit - (int)json_array_size(got);
        long long oldest = LLONG_MIN; /* stays so when nothing is read */
        json_t *batch = json_array();
        sieve sv = {keep, keep_ctx, bpos, topological ? topo : NULL};
        rc = room_events(c, viewer, device, room_id, after, upto, keep ? read : need, true, true,
                         with_room_id, &sv, batch, more, &oldest, err);
        size_t nb = json_array_size(batch);
        if (keep) memcpy(pos + cap - json_array_size(got) - nb, bpos, nb * sizeof *pos);
        json_array_extend(batch, got);
        json_decref(got);
        got = batch;
        if (rc < 0 || oldest == LLONG_MIN) break;
        *edge = oldest;
        if ((int)json_array_size(got) > limit) { /* a filtered read: keep the newest */
            while ((int)json_array_size(got) > limit) json_array_remove(got, 0);
            *more = true;
            break;
        }
        /* Full, or the range read to its start: done. Else what the
         * viewer may not see, or the filter refused, left room for older
         * events. */
        if ((int)json_array_size(got) >= limit || !*more) break;
        if (!topological) upto = oldest - 1;
    }
    /* Filtered, the timeline starts at its oldest event rather than at the
     * oldest event read: paging back from there gives what the filter left
     * out too. */
    if (keep && json_array_size(got)) *edge = pos[cap - json_array_size(got)];
    if (rc == 0) json_array_extend(out, got);
    json_decref(got);
    free(pos);
    free(bpos);
    return rc;
}

json_t *client_event_by_id(db_conn *c, const char *event_id, bool with_room_id, hs_err *err) {
    json_t *arr = json_array();
    if (client_events_by_ids(c, &event_id, 1, with_room_id, arr, err) < 0) {
        json_decref(arr);
        return NULL;
    }
    json_t *ev = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    if (!ev) hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
    return ev;
}

int client_events_by_ids(db_conn *c, const char *const *ids, size_t n, bool with_room_id,
                         json_t *out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT " EVENT_COLS " FROM events e" EVENT_JOINS
                               " WHERE e.event_id = ANY($1::text[]) AND e.rejected_reason IS NULL"
                               " ORDER BY e.stream_ordering NULLS FIRST");
    if (n == 0) return 0;
    char *pgarr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 1, (const char *[]){pgarr}, err);
    free(pgarr);
    if (!r) return -1;
    long long now = hs_now_ms();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *ev = row_event(r, i, with_room_id, false, now);
        if (ev) json_array_append_new(out, ev);
    }
    PQclear(r);
    return 0;
}

int client_events_by_ids_for(db_conn *c, const char *viewer, const char *device,
                             const char *const *ids, size_t n, bool with_room_id, json_t *out,
                             hs_err *err) {
    static db_stmt q = DB_STMT("SELECT " EVENT_COLS VISIBILITY_COLS("$2", "$3")
                               " FROM events e" EVENT_JOINS
                               " WHERE e.event_id = ANY($1::text[])" ACCEPTED
                               " ORDER BY e.stream_ordering");
    if (n == 0) return 0;
    char *pgarr = db_text_array(ids, n);
    PGresult *r = db_run(c, &q, 3, (const char *[]){pgarr, viewer, device}, err);
    free(pgarr);
    if (!r) return -1;
    int rc = append_rows(c, r, PQntuples(r), false, viewer, false, with_room_id, NULL, out, err);
    PQclear(r);
    return rc;
}

json_t *client_strip_state(const json_t *events) {
    json_t *out = json_array();
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (type && !strcmp(type, "m.room.create")) {
            json_array_append(out, ev);
            continue;
        }
        json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O}", "type",
                                             json_object_get(ev, "type"), "state_key",
                                             json_object_get(ev, "state_key"), "content",
                                             json_object_get(ev, "content"), "sender",
                                             json_object_get(ev, "sender")));
    }
    return out;
}
