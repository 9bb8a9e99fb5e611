/* sync_rooms.c — what /sync says about each room.
 *
 * A joined room carries the timeline since the token (the newest events,
 * `limited` when more happened) and the state the client lacks: everything
 * up to the timeline's start on an initial sync, a newly joined room or
 * full_state; after a gap, the state that changed between the token and the
 * timeline's start. A newly joined room's timeline is that of an initial
 * sync: the room's newest events, not only those since the token. A hole
 * in the DAG (sql/030) makes a timeline `limited` and, incrementally,
 * starts it after the hole. Invites and knocks carry stripped state; a
 * room left since the token carries its timeline up to the leave. A room
 * joined with partial state waits for its full state when the filter does
 * not lazy-load members, then comes as newly joined (partial_rooms.h). */
#include "sync_rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "channels.h"
#include "events_read.h"
#include "partial_rooms.h"
#include "remote_rooms.h"
#include "sync_lazy_members.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "rooms/rooms.h"

typedef struct membership_row {
    char *room_id, *membership, *event_id;
    long long pos;
    bool changed; /* the membership changed within (since, to] */
    /* A room this server is not in (an invite, knock or rejection kept by
     * federation, sql/013): its stripped state and membership event. */
    char *remote_state, *remote_event, *remote_version;
    /* Banned, or made to leave by someone else (kicked, invite withdrawn):
     * an initial sync shows the room even without include_leave, as
     * Synapse does, so a client learns why the room went away. */
    bool removed;
    /* A joined room's partial state (partial_rooms.h): marked partial now,
     * and the events position of its last resync (0: none). */
    bool partial;
    long long full_state_pos;
    /* Joined within the span and not joined at the token (or left and came
     * back within the span), whether joined still or left again: the client
     * has none of the room's timeline (Synapse's newly_joined_rooms). A
     * profile change alone is not that. */
    bool newly_joined;
    char *gaps; /* positions of the room's timeline gaps up to the span's end,
                 * comma-separated (sql/030), or NULL: not read yet */
} membership_row;

/* The user's member events m of the room cs in (since, to], as accepted
 * timeline events: a short range of events_member_of. */
#define OWN_MEMBER_EVENTS_IN_SPAN                                                          \
    " WHERE m.type = 'm.room.member' AND m.state_key = $1"                                \
    " AND m.stream_ordering > $2 AND m.stream_ordering <= $3 AND m.room_id = cs.room_id" \
    " AND m.rejected_reason IS NULL AND NOT m.soft_failed"
#define MEMBERSHIP_OF(X) "convert_from(" X ".json, 'UTF8')::json->'content'->>'membership'"

/* Memberships from the room's current state, and those of rooms we are not
 * in (fed_remote_memberships), whichever of a room's two is newer.
 * The user's member events themselves (e: position, sender) are read only
 * where they matter: on an initial sync, and for the rooms whose membership
 * changed in the span (ch) or that have a remote membership too (rm). An
 * incremental sync of a user in many rooms reads a few, not one per room;
 * the per-room lookups are sets read once (hashed). A member event after
 * the span ($3) leaves its room out, as if not yet there. */
static db_stmt memberships_q = DB_STMT(
    "SELECT cs.room_id, cs.membership, cs.event_id, coalesce(e.stream_ordering, 0),"
    "  ch.room_id IS NOT NULL,"
    "  cs.room_id IN (SELECT f.room_id FROM room_forgotten f WHERE f.user_id = $1),"
    "  NULL, NULL, NULL,"
    "  cs.membership = 'ban' OR (cs.membership = 'leave' AND e.sender <> $1),"
    "  cs.room_id IN (SELECT p.room_id FROM fed_partial_state_rooms p),"
    "  coalesce(d.stream_ordering, 0),"
    "  e.sender,"
    /* Column 13, for a room whose membership changed in the span (an
     * incremental sync): newly joined, i.e. joined within the span and not
     * joined at the token: the membership before the span (the state the
     * span's first member event replaced) was not a join. A room joined now
     * is newly joined also when it was left and joined again within the
     * span; a room left now, when a join in the span came first (its leave
     * entry then has full state, as Synapse's). Only the span's events are
     * read, not the room's history, and only when the current member event
     * is in the span (else none of the user's member events is: most rooms
     * of an incremental sync). */
    "  $2 > 0 AND coalesce(e.stream_ordering, 0) > $2 AND ("
    "   (cs.membership = 'join' AND EXISTS (SELECT 1 FROM events m"
    OWN_MEMBER_EVENTS_IN_SPAN " AND " MEMBERSHIP_OF("m") " <> 'join'))"
    "   OR ((cs.membership = 'join' OR EXISTS (SELECT 1 FROM events m"
    OWN_MEMBER_EVENTS_IN_SPAN " AND " MEMBERSHIP_OF("m") " = 'join'))"
    "    AND coalesce((SELECT coalesce(" MEMBERSHIP_OF("pm") ", '') FROM events m"
    "     LEFT JOIN events pm ON pm.event_id = m.replaces_state" OWN_MEMBER_EVENTS_IN_SPAN
    "     ORDER BY m.stream_ordering LIMIT 1), 'join') <> 'join')),"
    /* Column 14, on an initial sync (every room is shown): the room's
     * timeline gaps up to its end (sql/030; rare, so usually NULL), here
     * rather than by a query per room. An incremental sync shows few
     * rooms and asks for theirs (latest_gap). */
    "  CASE WHEN $2 = 0 THEN coalesce((SELECT string_agg(g.stream_ordering::text, ',')"
    "   FROM timeline_gaps g WHERE g.room_id = cs.room_id AND g.stream_ordering <= $3), '')"
    "  END"
    " FROM current_state cs"
    " LEFT JOIN (SELECT DISTINCT m.room_id FROM events m WHERE m.type = 'm.room.member'"
    "  AND m.state_key = $1 AND m.stream_ordering > $2 AND m.stream_ordering <= $3) ch"
    "  ON ch.room_id = cs.room_id"
    " LEFT JOIN (SELECT DISTINCT x.room_id FROM fed_remote_memberships x WHERE x.user_id = $1) rm"
    "  ON rm.room_id = cs.room_id"
    " LEFT JOIN fed_partial_state_done d ON d.room_id = cs.room_id"
    " LEFT JOIN LATERAL (SELECT e.stream_ordering, e.sender FROM events e"
    "  WHERE e.event_id = cs.event_id"
    "   AND ($2 = 0 OR ch.room_id IS NOT NULL OR rm.room_id IS NOT NULL) OFFSET 0) e ON true"
    " WHERE cs.type = 'm.room.member' AND cs.state_key = $1"
    "  AND cs.event_id NOT IN (SELECT n.event_id FROM events n WHERE n.type = 'm.room.member'"
    "   AND n.state_key = $1 AND n.stream_ordering > $3)"
    "  AND NOT EXISTS (SELECT 1 FROM fed_remote_memberships x WHERE x.room_id = rm.room_id"
    "   AND x.user_id = $1 AND x.stream_ordering > e.stream_ordering AND x.stream_ordering <= $3)"
    " UNION ALL"
    " SELECT x.room_id, x.membership, x.event_id, x.stream_ordering,"
    "  x.stream_ordering > $2,"
    "  EXISTS (SELECT 1 FROM room_forgotten f WHERE f.user_id = $1 AND f.room_id = x.room_id),"
    "  x.stripped_state, x.event_json, x.room_version,"
    "  x.membership = 'ban' OR (x.membership = 'leave' AND x.event_json::jsonb->>'sender' <> $1),"
    "  false, 0, x.event_json::jsonb->>'sender', false, NULL"
    " FROM fed_remote_memberships x WHERE x.user_id = $1 AND x.stream_ordering <= $3"
    "  AND NOT EXISTS (SELECT 1 FROM current_state cs JOIN events e USING (event_id)"
    "   WHERE cs.room_id = x.room_id AND cs.type = 'm.room.member' AND cs.state_key = $1"
    "   AND e.stream_ordering >= x.stream_ordering)");

static void memberships_params(const sync_params *p, char since[24], char to[24]) {
    snprintf(since, 24, "%lld", p->since < 0 ? 0 : p->since);
    snprintf(to, 24, "%lld", p->to);
}

static int load_memberships(db_conn *c, const sync_params *p, membership_row **out, size_t *n,
                            hs_err *err) {
    char since[24], to[24];
    memberships_params(p, since, to);
    PGresult *r = db_run(c, &memberships_q, 3, (const char *[]){p->user_id, since, to}, err);
    if (!r) return -1;
    *n = 0;
    *out = calloc((size_t)PQntuples(r) + 1, sizeof **out);
    for (int i = 0; i < PQntuples(r); i++) {
        /* A forgotten room is gone from /sync, except that an incremental
         * sync still brings the leave that happened since: with
         * forget_rooms_on_leave the room is forgotten as the leave (or kick)
         * is stored, and the client must still learn it left. */
        bool forgotten = PQgetvalue(r, i, 5)[0] == 't';
        bool changed_since = p->since >= 0 && PQgetvalue(r, i, 4)[0] == 't';
        if (forgotten && strcmp(PQgetvalue(r, i, 1), "join") != 0 && !changed_since) continue;
        /* An invite from a user the invitee ignores is not shown (Synapse;
         * the spec: ignored users' invites must not reach the client). */
        if (!strcmp(PQgetvalue(r, i, 1), "invite") && p->ignored &&
            json_object_get(p->ignored, PQgetvalue(r, i, 12)))
            continue;
        membership_row *m = &(*out)[(*n)++];
        m->room_id = strdup(PQgetvalue(r, i, 0));
        m->membership = strdup(PQgetvalue(r, i, 1));
        m->event_id = strdup(PQgetvalue(r, i, 2));
        m->pos = atoll(PQgetvalue(r, i, 3));
        m->changed = PQgetvalue(r, i, 4)[0] == 't';
        m->removed = PQgetvalue(r, i, 9)[0] == 't';
        m->partial = PQgetvalue(r, i, 10)[0] == 't';
        m->full_state_pos = atoll(PQgetvalue(r, i, 11));
        m->newly_joined = m->changed && PQgetvalue(r, i, 13)[0] == 't';
        if (!PQgetisnull(r, i, 14)) m->gaps = strdup(PQgetvalue(r, i, 14));
        if (!PQgetisnull(r, i, 6)) {
            m->remote_state = strdup(PQgetvalue(r, i, 6));
            m->remote_event = strdup(PQgetvalue(r, i, 7));
            m->remote_version = strdup(PQgetvalue(r, i, 8));
        }
    }
    PQclear(r);
    return 0;
}

static void free_memberships(membership_row *m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(m[i].room_id), free(m[i].membership), free(m[i].event_id);
        free(m[i].remote_state), free(m[i].remote_event), free(m[i].remote_version);
        free(m[i].gaps);
    }
    free(m);
}

/* A room we are not in and have left (a rejected invite, a retracted
 * knock): only the leave event is known. */
static json_t *remote_leave_entry(const membership_row *m) {
    hs_err err = {0};
    json_t *pdu = hs_json_parse_object(m->remote_event, strlen(m->remote_event), &err);
    const room_version *v = room_version_get(m->remote_version);
    json_t *ev = pdu && v ? client_event_format(m->event_id, pdu, v, NULL, NULL, false, hs_now_ms())
                          : NULL;
    json_decref(pdu);
    json_t *events = json_array();
    if (ev) json_array_append_new(events, ev);
    return json_pack("{s:{s:o, s:b}, s:{s:[]}}", "timeline", "events", events, "limited", 0,
                     "state", "events");
}

/* State after the last accepted event at or before pos in the room. */
static int state_at_pos(db_conn *c, const char *room_id, long long pos, room_state_map *out,
                        hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT event_id FROM events WHERE room_id = $1 AND stream_ordering <= $2"
        " AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed"
        " ORDER BY stream_ordering DESC LIMIT 1");
    char ps[24];
    snprintf(ps, sizeof ps, "%lld", pos);
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, ps}, err);
    if (!r) return -1;
    int rc = 0;
    room_state_map_clear(out);
    if (PQntuples(r)) rc = room_store_state_at(c, PQgetvalue(r, 0, 0), true, out, err);
    PQclear(r);
    return rc;
}

/* Whether a timeline event is shown: not hidden by the filter or the
 * user's ignore list (client_event_keep). An ignored user's state events
 * still come: the spec makes them the exception, the client needs them. */
static bool timeline_keeps(const json_t *ev, void *ctx) {
    const sync_params *p = ctx;
    if (client_ignored_event(p->ignored, ev)) return false;
    return !p->filter || client_filter_event_allowed(&p->filter->timeline, ev);
}

/* Whether lazy-loaded memberships this device was sent are left out:
 * incrementally, unless the filter asks for redundant ones. */
static bool dedupe_members(const sync_params *p) {
    return p->lazy_load_members && !p->redundant_members && p->since >= 0;
}

/* Note the memberships a room's entry sends (its state and timeline), for
 * dedupe_members's next syncs. */
static void note_members(const sync_params *p, const json_t *events) {
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev) {
        const char *id = json_string_value(json_object_get(ev, "event_id"));
        const char *type = json_string_value(json_object_get(ev, "type"));
        if (id && type && !strcmp(type, "m.room.member"))
            client_ll_members_note(p->user_id, p->device_id, id);
    }
}

/* The IDs of `state` to send: all of it, or what differs from `known`;
 * with lazy loading only the members the timeline needs (and the user). */
static size_t pick_state(const room_state_map *state, const room_state_map *known,
                         const sync_params *p, const json_t *timeline, const char **ids) {
    size_t n = 0, it = 0;
    const char *t, *k, *id;
    while (room_state_map_next(state, &it, &t, &k, &id)) {
        bool lazy_member = p->lazy_load_members && !strcmp(t, "m.room.member") &&
                           strcmp(k, p->user_id) != 0;
        bool needed = false;
        if (lazy_member) {
            size_t i;
            json_t *ev;
            json_array_foreach(timeline, i, ev)
                needed |= !strcmp(json_string_value(json_object_get(ev, "sender")), k);
            /* A whole state (initial, full_state) has only the senders'; a
             * gappy incremental sync has every membership that changed in
             * the gap too, as Synapse's (it does not lazy-load gaps: the
             * client could not otherwise learn of a leave there). */
            if (!needed && !known) continue;
        }
        /* Lazy loading sends a sender's membership with their messages even
         * if it did not change, unless this device was sent it already
         * (sync_lazy_members.h). */
        if (lazy_member && dedupe_members(p) &&
            client_ll_members_sent(p->user_id, p->device_id, id))
            continue;
        if (known && !needed) {
            const char *had = room_state_map_get(known, t, k);
            if (had && !strcmp(had, id)) continue;
        }
        ids[n++] = id;
    }
    return n;
}

/* Leave out of the state section what the timeline itself carries. */
static void drop_timeline_ids(const char **ids, size_t *n, const json_t *timeline) {
    size_t w = 0;
    for (size_t i = 0; i < *n; i++) {
        bool dup = false;
        size_t k;
        json_t *ev;
        json_array_foreach(timeline, k, ev)
            dup |= !strcmp(json_string_value(json_object_get(ev, "event_id")), ids[i]);
        if (!dup) ids[w++] = ids[i];
    }
    *n = w;
}

static int room_summary(db_conn *c, const char *room_id, const char *user_id, json_t *room,
                        hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT count(*) FILTER (WHERE membership = 'join'),"
        " count(*) FILTER (WHERE membership = 'invite'),"
        " (SELECT array_to_json(array(SELECT state_key FROM current_state h"
        "   WHERE h.room_id = $1 AND h.type = 'm.room.member' AND h.state_key <> $2"
        "   AND h.membership IN ('join', 'invite') ORDER BY h.state_key LIMIT 5)))::text,"
        " EXISTS (SELECT 1 FROM room_summaries n WHERE n.room_id = $1"
        "  AND (coalesce(n.name, '') <> '' OR coalesce(n.canonical_alias, '') <> ''))"
        " FROM current_state WHERE room_id = $1 AND type = 'm.room.member'");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, user_id}, err);
    if (!r) return -1;
    /* Heroes only for a room without a name or alias to show (the spec
     * requires them then; Synapse leaves them out otherwise). */
    json_t *summary = json_object();
    if (PQgetvalue(r, 0, 3)[0] != 't') {
        json_error_t je;
        json_t *heroes = json_loads(PQgetvalue(r, 0, 2), 0, &je);
        json_object_set_new(summary, "m.heroes", heroes ? heroes : json_array());
    }
    /* With partial state the counts would be those of the few members we
     * know: left out (the spec's "unchanged") until the full state is in. */
    int partial = client_room_is_partial(c, room_id, err);
    if (partial == 0) {
        json_object_set_new(summary, "m.joined_member_count",
                            json_integer(atoll(PQgetvalue(r, 0, 0))));
        json_object_set_new(summary, "m.invited_member_count",
                            json_integer(atoll(PQgetvalue(r, 0, 1))));
    }
    json_object_set_new(room, "summary", summary);
    PQclear(r);
    return partial < 0 ? -1 : 0;
}

/* Whether a room's entry carries membership events: only then can its
 * summary have changed (the spec lets an incremental sync omit an unchanged
 * summary, as Synapse does). */
static bool has_member_events(const json_t *entry) {
    static const char *const sections[] = {"timeline", "state", "state_after"};
    for (size_t s = 0; s < sizeof sections / sizeof *sections; s++) {
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(json_object_get(entry, sections[s]), "events"), i, ev) {
            const char *type = json_string_value(json_object_get(ev, "type"));
            if (type && !strcmp(type, "m.room.member")) return true;
        }
    }
    return false;
}

/* The latest timeline gap (sql/030) of the room in (after, upto]: the
 * position of the first event after it, 0 for none, or -1. */
static long long latest_gap(db_conn *c, const membership_row *m, long long after,
                            long long upto, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT coalesce(max(stream_ordering), 0) FROM timeline_gaps"
        " WHERE room_id = $1 AND stream_ordering > $2 AND stream_ordering <= $3");
    long long gap = 0;
    if (!m->gaps) {
        char a[24], u[24];
        snprintf(a, sizeof a, "%lld", after);
        snprintf(u, sizeof u, "%lld", upto);
        PGresult *r = db_run(c, &q, 3, (const char *[]){m->room_id, a, u}, err);
        if (!r) return -1;
        gap = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        return gap;
    }
    for (const char *s = m->gaps; *s;) {
        char *end;
        long long g = strtoll(s, &end, 10);
        if (end == s) break; /* not a number: stop */
        if (g > after && g <= upto && g > gap) gap = g;
        s = *end == ',' ? end + 1 : end;
    }
    return gap;
}

static bool in_timeline(const json_t *timeline, const char *event_id) {
    size_t i;
    json_t *ev;
    json_array_foreach(timeline, i, ev)
        if (!strcmp(json_string_value(json_object_get(ev, "event_id")) ?: "", event_id)) return true;
    return false;
}

/* The state at the span's end laid over the state at the timeline's start,
 * at the keys whose event the timeline does not hold (Synapse's
 * _calculate_state, its timeline_end): a timeline the filter sifted, or
 * one read in DAG order, can leave out a state change that the client must
 * still learn (a rename the filter hid, or one on a fork that arrived late).
 * Only state events after the timeline's first (position from) can differ:
 * when the span ends now, those still current are read by position, which
 * is cheap; a span that ends earlier (a room left) takes the whole state
 * there. */
static int overlay_end_state(db_conn *c, const sync_params *p, const char *room_id,
                             long long from, long long upto, const json_t *timeline,
                             room_state_map *state, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT e.type, e.state_key, e.event_id FROM events e JOIN current_state cs"
        " ON cs.room_id = e.room_id AND cs.type = e.type AND cs.state_key = e.state_key"
        " AND cs.event_id = e.event_id"
        " WHERE e.room_id = $1 AND e.stream_ordering > $2 AND e.stream_ordering <= $3"
        " AND e.state_key IS NOT NULL");
    room_state_map *end = room_state_map_new();
    int rc = 0;
    if (upto == p->to) {
        char f[24], u[24];
        snprintf(f, sizeof f, "%lld", from);
        snprintf(u, sizeof u, "%lld", upto);
        PGresult *r = db_run(c, &q, 3, (const char *[]){room_id, f, u}, err);
        rc = r ? 0 : -1;
        for (int i = 0; r && i < PQntuples(r) && rc == 0; i++)
            if (room_state_map_set(end, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                                   PQgetvalue(r, i, 2)) < 0)
                rc = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        PQclear(r);
    } else {
        rc = state_at_pos(c, room_id, upto, end, err);
    }
    size_t it = 0;
    const char *type, *key, *id;
    while (rc == 0 && room_state_map_next(end, &it, &type, &key, &id)) {
        const char *have = room_state_map_get(state, type, key);
        if ((have && !strcmp(have, id)) || in_timeline(timeline, id)) continue;
        if (room_state_map_set(state, type, key, id) < 0)
            rc = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    }
    room_state_map_free(end);
    return rc;
}

/* A joined or left room: timeline (since, upto] and the state around it.
 * A gap in the span (events from another server whose predecessors we
 * lack) makes it `limited`; incrementally the timeline then starts after
 * it, so what came before the gap is not shown run together with what came
 * after it: the client paginates back over the gap from prev_batch
 * (Synapse; Complement's TestSyncTimelineGap). */
static int timeline_room(db_conn *c, const sync_params *p, const membership_row *m, long long upto,
                         bool full, json_t **out, hs_err *err) {
    json_t *timeline = json_array();
    bool more = false;
    long long first = 0;
    long long after = p->since < 0 ? 0 : p->since;
    long long gap = latest_gap(c, m, after, upto, err);
    int rc = gap < 0 ? -1 : 0;
    if (gap > 0 && p->since >= 0) after = gap - 1;
    /* A filter that lets no timeline event through (types: []) reads none:
     * the entry is the state (whole, or what changed), never `limited`. */
    const client_filter_part *tf = p->filter ? &p->filter->timeline : NULL;
    bool blocked = tf && client_filter_blocks_all(tf);
    /* sifted: the filter may refuse state events too; an ignore list, only
     * other events (timeline_keeps), so it needs no state of its own. */
    bool sifted = tf && client_filter_sifts(tf);
    bool ignoring = json_object_size(p->ignored) > 0;
    if (rc == 0 && !blocked)
        rc = client_room_timeline_for(c, p->user_id, p->device_id, m->room_id, after, upto,
                                      p->timeline_limit, p->since < 0,
                                      sifted || ignoring ? timeline_keeps : NULL,
                                      (void *)p, false, timeline, &more, &first, err);
    more |= (gap > 0 || p->newly_joined) && !blocked;
    room_state_map *state = room_state_map_new(), *known = NULL;
    json_t *state_events = json_array();
    if (rc < 0) goto done;
    /* A sifted timeline may have refused state changes: they come as state. */
    if (!full && !more && !blocked && !sifted && json_array_size(timeline) == 0 && !m->changed) {
        *out = NULL; /* nothing new here */
        goto done;
    }
    if (full || more || blocked || sifted || p->use_state_after ||
        (p->lazy_load_members && json_array_size(timeline) > 0)) {
        const char *first_id = json_string_value(json_object_get(json_array_get(timeline, 0), "event_id"));
        if (p->use_state_after) rc = state_at_pos(c, m->room_id, upto, state, err);
        else if (first_id) rc = room_store_state_at(c, first_id, false, state, err);
        else rc = state_at_pos(c, m->room_id, upto, state, err);
        if (rc == 0 && !p->use_state_after && first_id && (sifted || p->since < 0))
            rc = overlay_end_state(c, p, m->room_id, first, upto, timeline, state, err);
        if (rc == 0 && !full && p->since >= 0) {
            known = room_state_map_new();
            rc = state_at_pos(c, m->room_id, p->since, known, err);
        }
        if (rc < 0) goto done;
        const char **ids =
            calloc(room_state_map_count(state) + json_array_size(timeline) + 1, sizeof *ids);
        size_t n = pick_state(state, known, p, timeline, ids), n_owned = 0;
        char **owned = NULL;
        if (p->lazy_load_members)
            rc = client_partial_senders(c, m->room_id, state, timeline, ids, &n, &owned, &n_owned,
                                        err);
        if (!p->use_state_after) drop_timeline_ids(ids, &n, timeline);
        if (rc == 0) rc = client_events_by_ids(c, ids, n, false, state_events, err);
        /* The filter's room.state part (types, senders …) applies to it. */
        for (size_t i = json_array_size(state_events); p->filter && i > 0; i--)
            if (!client_filter_event_allowed(&p->filter->state, json_array_get(state_events, i - 1)))
                json_array_remove(state_events, i - 1);
        free(ids);
        for (size_t i = 0; i < n_owned; i++) free(owned[i]);
        free(owned);
        if (rc < 0) goto done;
    }
    /* An initial sync that holds the room's whole history points back from
     * where it ends, as Synapse does (its prev_batch stays the sync's own
     * position unless the timeline was cut short): paging back from it
     * gives the timeline again, which SyTest and older clients expect. */
    char prev[32];
    bool whole = p->since < 0 && !more;
    snprintf(prev, sizeof prev, "t%lld", json_array_size(timeline) && !whole ? first - 1 : upto);
    if (p->lazy_load_members && !p->redundant_members) {
        note_members(p, state_events);
        note_members(p, timeline);
    }
    *out = json_pack("{s:{s:O, s:b, s:s}}", "timeline", "events", timeline, "limited", more,
                     "prev_batch", prev);
    json_object_set_new(*out, p->use_state_after ? "state_after" : "state",
                        json_pack("{s:O}", "events", state_events));
done:
    json_decref(timeline);
    json_decref(state_events);
    room_state_map_free(state);
    room_state_map_free(known);
    return rc;
}

bool client_sync_entry_has_events(const json_t *entry) {
    static const char *const sections[] = {"timeline", "state", "state_after", "ephemeral",
                                           "account_data"};
    for (size_t s = 0; s < sizeof sections / sizeof *sections; s++)
        if (json_array_size(json_object_get(json_object_get(entry, sections[s]), "events")))
            return true;
    return false;
}

/* Stripped state for invites and knocks: what a client shows before joining. */
static int stripped_state(db_conn *c, const membership_row *m, json_t **out, hs_err *err) {
    static const char *const keep[] = {"m.room.create", "m.room.join_rules", "m.room.name",
                                       "m.room.avatar", "m.room.canonical_alias",
                                       "m.room.encryption", "m.room.topic", NULL};
    room_state_map *state = room_state_map_new();
    int rc = room_store_state_at(c, m->event_id, true, state, err);
    const char *ids[16];
    size_t n = 0;
    for (const char *const *t = keep; *t && rc == 0; t++) {
        const char *id = room_state_map_get(state, *t, "");
        if (id) ids[n++] = id;
    }
    ids[n++] = m->event_id;
    json_t *full = json_array();
    if (rc == 0) rc = client_events_by_ids(c, ids, n, false, full, err);
    *out = client_strip_state(full);
    json_decref(full);
    room_state_map_free(state);
    return rc;
}

/* The rooms with events in (since, to], so an incremental sync looks only at
 * those instead of asking every joined room (one query each). NULL when the
 * span is too long to be worth it: then every room is looked at. */
#define ACTIVE_SCAN_MAX 20000 /* events; the LIMIT below is one more */
static db_stmt active_q = DB_STMT(
    "WITH s AS (SELECT room_id FROM events WHERE stream_ordering > $1"
    "  AND stream_ordering <= $2 LIMIT 20001)"
    " SELECT room_id, (SELECT count(*) FROM s) FROM s GROUP BY room_id");

static json_t *active_rooms(db_conn *c, const sync_params *p, hs_err *err, bool *failed) {
    char since[24], to[24];
    snprintf(since, sizeof since, "%lld", p->since);
    snprintf(to, sizeof to, "%lld", p->to);
    PGresult *r = db_run(c, &active_q, 2, (const char *[]){since, to}, err);
    if (!r) return *failed = true, NULL;
    json_t *set = NULL;
    if (PQntuples(r) == 0 || atoll(PQgetvalue(r, 0, 1)) <= ACTIVE_SCAN_MAX) {
        set = json_object();
        for (int i = 0; i < PQntuples(r); i++) json_object_set_new(set, PQgetvalue(r, i, 0), json_true());
    }
    PQclear(r);
    return set;
}

void sync_rooms_prefetch(db_conn *c, const sync_params *p) {
    char since[24], to[24];
    memberships_params(p, since, to);
    hs_err ignored = {0};
    db_prefetch(c, &memberships_q, 3, (const char *[]){p->user_id, since, to}, 0, &ignored);
    if (p->since < 0 || p->full_state) return;
    snprintf(since, sizeof since, "%lld", p->since);
    db_prefetch(c, &active_q, 2, (const char *[]){since, to}, 0, &ignored);
}

int sync_rooms(db_conn *c, const sync_params *p, json_t *rooms, bool *any, char ***joined_out,
               size_t *n_joined, size_t *n_shown, hs_err *err) {
    membership_row *ms;
    size_t n;
    if (load_memberships(c, p, &ms, &n, err) < 0) return -1;
    bool initial = p->since < 0, failed = false;
    /* A new sync sequence: the device may have forgotten everything. */
    if (initial && p->lazy_load_members && !p->redundant_members)
        client_ll_members_reset(p->user_id, p->device_id);
    json_t *active = initial || p->full_state ? NULL : active_rooms(c, p, err, &failed);
    if (failed) {
        free_memberships(ms, n);
        return -1;
    }
    *joined_out = calloc(n + 1, sizeof **joined_out);
    *n_joined = 0;
    char **held = calloc(n + 1, sizeof *held); /* joined, left out until their full state */
    size_t n_held = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        membership_row *m = &ms[i];
        const char *mem = m->membership;
        json_t *entry = NULL;
        if (p->filter && !client_filter_room_allowed(&p->filter->room, m->room_id)) continue;
        if (!strcmp(mem, "join")) {
            sync_partial_view view = sync_partial_view_of(p->lazy_load_members, m->partial,
                                                          m->full_state_pos, p->since, p->to);
            if (view == SYNC_PARTIAL_HIDE) {
                held[n_held++] = strdup(m->room_id);
                continue;
            }
            (*joined_out)[(*n_joined)++] = strdup(m->room_id);
            /* Newly joined for this client: everything, as on an initial
             * sync — the newest events of the room, not only those since
             * the token, and `limited` when there are older ones (Complement's
             * "Newly joined room has correct timeline in incremental sync"). */
            sync_params as_new = *p;
            bool newly = view == SYNC_PARTIAL_NEWLY_JOINED || m->newly_joined;
            if (newly) as_new.since = -1, as_new.newly_joined = true;
            if (view == SYNC_PARTIAL_NEWLY_JOINED && p->newly_full)
                json_object_set_new(p->newly_full, m->room_id, json_true());
            /* Not m->changed: a profile change of the user's own is in the
             * timeline, and the state since the token is what changed. */
            bool full = initial || p->full_state || newly;
            if (!full && active && !json_object_get(active, m->room_id)) continue;
            rc = timeline_room(c, newly ? &as_new : p, m, p->to, full, &entry, err);
            if (rc == 0 && entry && (full || has_member_events(entry)))
                rc = room_summary(c, m->room_id, p->user_id, entry, err);
            if (entry && full && p->kept) json_object_set_new(p->kept, m->room_id, json_true());
            if (entry) json_object_set_new(json_object_get(rooms, "join"), m->room_id, entry);
            /* An entry the filters left empty stays for now (ephemeral or
             * account data may fill it) but is no news by itself. */
            if (entry && !full && !client_sync_entry_has_events(entry)) continue;
        } else if (!strcmp(mem, "invite") || !strcmp(mem, "knock")) {
            if (!initial && !m->changed) continue;
            /* Invites to a user who blocks them stay hidden (v1.18; channels.h). */
            int blocked = !strcmp(mem, "invite") ? client_invites_blocked(c, p->user_id, err) : 0;
            if (blocked) {
                rc = blocked < 0 ? -1 : 0;
                continue;
            }
            json_t *st = NULL;
            if (m->remote_state) st = hs_json_parse(m->remote_state, strlen(m->remote_state), err);
            else rc = stripped_state(c, m, &st, err);
            if (!st) st = json_array();
            bool inv = !strcmp(mem, "invite");
            entry = json_pack("{s:{s:o}}", inv ? "invite_state" : "knock_state", "events", st);
            json_object_set_new(json_object_get(rooms, inv ? "invite" : "knock"), m->room_id, entry);
        } else if (m->remote_event &&
                   ((initial && (p->include_leave || m->removed)) || (!initial && m->changed))) {
            entry = remote_leave_entry(m);
            json_object_set_new(json_object_get(rooms, "leave"), m->room_id, entry);
        } else if ((initial && (p->include_leave || m->removed)) || (!initial && m->changed)) {
            /* Incrementally, a room just left is a joined room's last entry:
             * the state that changed since the token, not all of it
             * (Complement's TestLeaveEventVisibility; Synapse), unless it was
             * joined within the span: then the client never had its state,
             * and gets it whole, with the timeline of a new room. */
            sync_params as_new = *p;
            if (m->newly_joined) as_new.since = -1, as_new.newly_joined = true;
            rc = timeline_room(c, &as_new, m, m->pos, initial || m->newly_joined, &entry, err);
            if (entry) json_object_set_new(json_object_get(rooms, "leave"), m->room_id, entry);
        }
        if (entry) *any = true;
    }
    /* The held rooms go last: waited on (their resync wakes this client)
     * but not shown. */
    *n_shown = *n_joined;
    for (size_t i = 0; i < n_held; i++) (*joined_out)[(*n_joined)++] = held[i];
    free(held);
    free_memberships(ms, n);
    json_decref(active);
    return rc;
}
