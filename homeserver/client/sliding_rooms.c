/* sliding_rooms.c — the rooms of a sliding sync response.
 *
 * A room sent for the first time on a connection ("initial") carries its
 * required state and its latest timeline; afterwards only what changed since
 * the connection's position. Names, heroes and counts are computed the way
 * Element X expects them from Synapse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "channels.h"
#include "events_read.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "partial_rooms.h"
#include "push_actions.h"
#include "rooms/rooms.h"
#include "sliding_sync.h"

void ss_rooms_free(ss_room *rooms, size_t n) {
    for (size_t i = 0; i < n; i++) {
        ss_room *x = &rooms[i];
        free(x->room_id), free(x->room_type);
        json_decref(x->tags);
        free(x->remote_state), free(x->remote_event), free(x->remote_version), free(x->event_id);
    }
    free(rooms);
}

static char *opt_dup(PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static bool in_direct(json_t *m_direct, const char *room_id) {
    const char *k;
    json_t *ids;
    json_object_foreach(m_direct, k, ids) {
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) if (json_is_string(id) && !strcmp(json_string_value(id), room_id)) return true;
    }
    return false;
}

/* The tags of the user's rooms (for the tags and not_tags filters). */
static int user_tags(db_conn *c, const char *user_id, ss_room *rooms, size_t n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id, content->'tags' FROM account_data WHERE user_id = $1 AND type = 'm.tag'"
        " AND room_id <> '' AND jsonb_typeof(content->'tags') = 'object'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    json_error_t je;
    for (int row = 0; row < PQntuples(r); row++)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(rooms[i].room_id, PQgetvalue(r, row, 0)) && !rooms[i].tags) {
                rooms[i].tags = json_loads(PQgetvalue(r, row, 1), 0, &je);
                break;
            }
    PQclear(r);
    return 0;
}

/* Which memberships the lists show. Rooms left by one's own leave appear
 * once, in the response after it; kicks and bans stay listed until
 * forgotten (as Synapse). */
#define LISTED \
    "(cs.membership IN ('join', 'invite', 'knock', 'ban') OR e.stream_ordering > $2" \
    " OR (cs.membership = 'leave' AND e.sender <> $1))"

int ss_user_rooms(db_conn *c, const char *user_id, long long since, long long to, json_t *m_direct,
                  const json_t *ignored, const char *const *subscribed, size_t n_subscribed,
                  ss_room **out, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.room_id, cs.membership, e.stream_ordering,"
        /* bump_stamp: the latest event of a kind that makes a room recent
         * (Synapse's SLIDING_SYNC_DEFAULT_BUMP_EVENT_TYPES): reactions,
         * edits of state or receipts do not move a room up the list. */
        " CASE WHEN cs.membership = 'join' THEN (SELECT max(x.stream_ordering) FROM events x"
        "   WHERE x.room_id = cs.room_id AND x.stream_ordering <= $3 AND NOT x.outlier"
        "   AND x.rejected_reason IS NULL AND NOT x.soft_failed AND x.type IN ('m.room.create',"
        "   'm.room.message', 'm.room.encrypted', 'm.sticker', 'm.call.invite', 'm.poll.start',"
        "   'm.beacon_info'))"
        "  ELSE e.stream_ordering END,"
        /* last_pos: the room's latest event of any kind (see ss_room). */
        " CASE WHEN cs.membership = 'join' THEN (SELECT max(x.stream_ordering) FROM events x"
        "   WHERE x.room_id = cs.room_id AND x.stream_ordering <= $3) ELSE e.stream_ordering END"
        " AS last_pos,"
        " EXISTS (SELECT 1 FROM current_state enc WHERE enc.room_id = cs.room_id"
        "   AND enc.type = 'm.room.encryption' AND enc.state_key = ''),"
        " (SELECT convert_from(ce.json, 'UTF8')::json->'content'->>'type' FROM current_state cc"
        "   JOIN events ce USING (event_id) WHERE cc.room_id = cs.room_id"
        "   AND cc.type = 'm.room.create' AND cc.state_key = '')"
        " , NULL, NULL, NULL, NULL,"
        " cs.membership = 'join' AND EXISTS (SELECT 1 FROM fed_partial_state_rooms p"
        "   WHERE p.room_id = cs.room_id), e.sender, " LISTED
        " FROM current_state cs JOIN events e USING (event_id)"
        " WHERE cs.type = 'm.room.member' AND cs.state_key = $1 AND e.stream_ordering <= $3"
        /* Subscriptions reach left rooms too (up to the leave). */
        " AND (" LISTED " OR cs.room_id = ANY($4::text[]))"
        " AND (cs.membership IN ('join', 'invite', 'knock') OR NOT EXISTS (SELECT 1"
        "  FROM room_forgotten f WHERE f.user_id = $1 AND f.room_id = cs.room_id))"
        /* A newer membership in a room we are not in replaces it (sync_rooms.c). */
        " AND NOT EXISTS (SELECT 1 FROM fed_remote_memberships x WHERE x.room_id = cs.room_id"
        "  AND x.user_id = $1 AND x.stream_ordering > e.stream_ordering AND x.stream_ordering <= $3)"
        " UNION ALL"
        " SELECT x.room_id, x.membership, x.stream_ordering, x.stream_ordering, x.stream_ordering,"
        "  EXISTS (SELECT 1 FROM json_array_elements(x.stripped_state::json) s"
        "   WHERE s->>'type' = 'm.room.encryption' AND s->>'state_key' = ''),"
        "  (SELECT s->'content'->>'type' FROM json_array_elements(x.stripped_state::json) s"
        "   WHERE s->>'type' = 'm.room.create' AND s->>'state_key' = '' LIMIT 1),"
        "  x.stripped_state, x.event_json, x.room_version, x.event_id, false,"
        "  x.event_json::jsonb->>'sender', true"
        " FROM fed_remote_memberships x WHERE x.user_id = $1 AND x.stream_ordering <= $3"
        "  AND (x.membership IN ('invite', 'knock') OR x.stream_ordering > $2)"
        "  AND NOT EXISTS (SELECT 1 FROM current_state cs JOIN events e USING (event_id)"
        "   WHERE cs.room_id = x.room_id AND cs.type = 'm.room.member' AND cs.state_key = $1"
        "   AND e.stream_ordering >= x.stream_ordering)");
    char s[24], t[24];
    snprintf(s, sizeof s, "%lld", since < 0 ? (long long)1 << 62 : since);
    snprintf(t, sizeof t, "%lld", to);
    char *subs = db_text_array(subscribed, n_subscribed);
    PGresult *r = db_run(c, &q, 4, (const char *[]){user_id, s, t, subs}, err);
    free(subs);
    if (!r) return -1;
    int blocked = client_invites_blocked(c, user_id, err);
    if (blocked < 0) return PQclear(r), -1;
    /* Invites from ignored users are left out, as /sync does (sync_rooms.c). */
    *n = 0;
    *out = calloc((size_t)PQntuples(r) + 1, sizeof **out);
    for (int row = 0; row < PQntuples(r); row++) {
        bool invite = !strcmp(PQgetvalue(r, row, 1), "invite");
        if (invite && blocked) continue; /* v1.18 */
        if (invite && ignored && json_object_get(ignored, PQgetvalue(r, row, 12))) continue;
        ss_room *x = &(*out)[(*n)++];
        x->room_id = strdup(PQgetvalue(r, row, 0));
        snprintf(x->membership, sizeof x->membership, "%s", PQgetvalue(r, row, 1));
        x->member_pos = atoll(PQgetvalue(r, row, 2));
        x->bump_stamp = PQgetisnull(r, row, 3) ? x->member_pos : atoll(PQgetvalue(r, row, 3));
        x->last_pos = PQgetisnull(r, row, 4) ? x->member_pos : atoll(PQgetvalue(r, row, 4));
        x->encrypted = PQgetvalue(r, row, 5)[0] == 't';
        x->room_type = PQgetisnull(r, row, 6) ? NULL : strdup(PQgetvalue(r, row, 6));
        x->is_dm = in_direct(m_direct, x->room_id);
        x->remote_state = opt_dup(r, row, 7);
        x->remote_event = opt_dup(r, row, 8);
        x->remote_version = opt_dup(r, row, 9);
        x->event_id = opt_dup(r, row, 10);
        x->partial = PQgetvalue(r, row, 11)[0] == 't';
        x->listed = PQgetvalue(r, row, 13)[0] == 't';
    }
    PQclear(r);
    return user_tags(c, user_id, *out, *n, err);
}

/* Does (type, state_key) match a required_state entry? */
static bool wanted(const json_t *req, const char *user_id, const char *type, const char *sk,
                   bool *lazy_members) {
    size_t i;
    json_t *pair;
    json_array_foreach(req, i, pair) {
        const char *t = json_string_value(json_array_get(pair, 0));
        const char *k = json_string_value(json_array_get(pair, 1));
        if (!t || !k) continue;
        if (strcmp(t, "*") && strcmp(t, type)) continue;
        if (!strcmp(k, "$LAZY") && !strcmp(type, "m.room.member")) {
            *lazy_members = true;
            continue;
        }
        if (!strcmp(k, "*") || !strcmp(k, sk) || (!strcmp(k, "$ME") && !strcmp(sk, user_id)))
            return true;
    }
    return false;
}

static bool timeline_sender(const json_t *timeline, const char *user) {
    size_t i;
    json_t *ev;
    json_array_foreach(timeline, i, ev) if (!strcmp(json_string_value(json_object_get(ev, "sender")), user)) return true;
    return false;
}

/* required_state: all matching state (initial, or when the room's
 * required_state widened), else the matching state events that changed
 * after the connection's position for the room. $LAZY members: those of
 * the timeline's senders and the requester's own, each sent once per
 * connection (req->lazy_sent) and again when it changes. */
static int required_state(db_conn *c, const char *user_id, const ss_room *room,
                          ss_room_req *req, const json_t *timeline, json_t *out, hs_err *err) {
    static db_stmt pos = DB_STMT(
        "SELECT event_id FROM events WHERE event_id = ANY($1::text[]) AND stream_ordering > $2");
    long long since = req->initial || req->state_again ? -1 : req->since;
    room_state_map *m = room_state_map_new();
    bool joined = !strcmp(room->membership, "join");
    int rc = joined ? room_store_current_state(c, room->room_id, m, err) : 0;
    if (rc == 0 && !joined) {
        static db_stmt me = DB_STMT(
            "SELECT event_id FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
            " AND state_key = $2");
        PGresult *r = db_run(c, &me, 2, (const char *[]){room->room_id, user_id}, err);
        if (!r) rc = -1;
        else if (PQntuples(r)) rc = room_store_state_at(c, PQgetvalue(r, 0, 0), true, m, err);
        PQclear(r);
    }
    size_t it = 0, n = 0, n_check = 0;
    const char *t, *k, *id;
    size_t cap = room_state_map_count(m) + json_array_size(timeline) + 1;
    const char **ids = calloc(cap, sizeof *ids), **check = calloc(cap, sizeof *check);
    bool lazy_any = false;
    while (rc == 0 && room_state_map_next(m, &it, &t, &k, &id)) {
        bool lazy = false;
        bool plain = wanted(req->required_state, user_id, t, k, &lazy);
        bool had = lazy && json_object_get(req->lazy_sent, k);
        bool member = lazy && (!strcmp(k, user_id) || timeline_sender(timeline, k) || had);
        lazy_any |= lazy;
        if (member) json_object_set_new(req->lazy_sent, k, json_true());
        if (!plain && !member) continue;
        /* A lazy member the connection has never had goes out whatever its age. */
        if (since < 0 || (member && !had && !plain)) ids[n++] = id;
        else check[n_check++] = id;
    }
    PGresult *r = NULL;
    if (rc == 0 && n_check > 0) { /* only what changed since the last response */
        char *arr = db_text_array(check, n_check), ps[24];
        snprintf(ps, sizeof ps, "%lld", since);
        r = db_run(c, &pos, 2, (const char *[]){arr, ps}, err);
        free(arr);
        if (!r) rc = -1;
        for (int i = 0; r && i < PQntuples(r); i++) ids[n++] = PQgetvalue(r, i, 0);
    }
    /* Partial state: senders it lacks, with every message of theirs (as /sync). */
    char **owned = NULL;
    size_t n_owned = 0;
    if (rc == 0 && lazy_any && joined)
        rc = client_partial_senders(c, room->room_id, m, timeline, ids, &n, &owned, &n_owned, err);
    if (rc == 0) rc = client_events_by_ids(c, ids, n, false, out, err);
    PQclear(r);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    free(owned);
    free(ids), free(check);
    room_state_map_free(m);
    return rc;
}

/* name, avatar, heroes and member counts of a room. */
static int room_meta(db_conn *c, const char *user_id, const char *room_id, json_t *o,
                     hs_err *err) {
    static db_stmt meta = DB_STMT(
        "SELECT cs.type, convert_from(e.json, 'UTF8')::json->'content' FROM current_state cs"
        " JOIN events e USING (event_id) WHERE cs.room_id = $1 AND cs.state_key = ''"
        " AND cs.type IN ('m.room.name', 'm.room.avatar')");
    static db_stmt members = DB_STMT(
        "SELECT cs.state_key, cs.membership, convert_from(e.json, 'UTF8')::json->'content'"
        " FROM current_state cs JOIN events e USING (event_id) WHERE cs.room_id = $1"
        " AND cs.type = 'm.room.member' AND cs.membership IN ('join', 'invite')"
        " ORDER BY e.stream_ordering");
    PGresult *r = db_run(c, &meta, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    json_error_t je;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *content = json_loads(PQgetvalue(r, i, 1), 0, &je);
        bool name = !strcmp(PQgetvalue(r, i, 0), "m.room.name");
        json_t *v = json_object_get(content, name ? "name" : "url");
        if (json_is_string(v) && json_string_length(v)) json_object_set(o, name ? "name" : "avatar", v);
        json_decref(content);
    }
    PQclear(r);
    r = db_run(c, &members, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    long long joined = 0, invited = 0;
    json_t *heroes = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *u = PQgetvalue(r, i, 0);
        if (!strcmp(PQgetvalue(r, i, 1), "join")) joined++;
        else invited++;
        if (!strcmp(u, user_id) || json_array_size(heroes) >= 5) continue;
        json_t *content = json_loads(PQgetvalue(r, i, 2), 0, &je);
        json_t *h = json_pack("{s:s}", "user_id", u);
        json_t *dn = json_object_get(content, "displayname"), *av = json_object_get(content, "avatar_url");
        if (json_is_string(dn)) json_object_set(h, "displayname", dn);
        if (json_is_string(av)) json_object_set(h, "avatar_url", av);
        json_array_append_new(heroes, h);
        json_decref(content);
    }
    PQclear(r);
    /* Heroes name a room that has no name (MSC4186, as Synapse). */
    if (json_array_size(heroes) && !json_object_get(o, "name")) json_object_set_new(o, "heroes", heroes);
    else json_decref(heroes);
    json_object_set_new(o, "joined_count", json_integer(joined));
    json_object_set_new(o, "invited_count", json_integer(invited));
    return 0;
}

/* Stripped state for an invite or knock (what a client shows before joining). */
static int invite_state(db_conn *c, const char *user_id, const ss_room *room, json_t *o,
                        hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.event_id FROM current_state cs WHERE cs.room_id = $1 AND ((cs.state_key = ''"
        " AND cs.type IN ('m.room.create', 'm.room.join_rules', 'm.room.name', 'm.room.avatar',"
        " 'm.room.canonical_alias', 'm.room.encryption', 'm.room.topic'))"
        " OR (cs.type = 'm.room.member' AND cs.state_key = $2))");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room->room_id, user_id}, err);
    if (!r) return -1;
    const char *ids[16];
    size_t n = 0;
    for (int i = 0; i < PQntuples(r) && n < 16; i++) ids[n++] = PQgetvalue(r, i, 0);
    json_t *full = json_array();
    int rc = client_events_by_ids(c, ids, n, false, full, err);
    PQclear(r);
    json_object_set_new(o, "invite_state", client_strip_state(full));
    json_decref(full);
    return rc;
}

/* A room this server is not in: invite or knock with the stripped state its
 * server sent (name and avatar taken from it), or the leave that ended one,
 * as the room's only timeline event. */
static json_t *remote_room_object(const ss_room *room) {
    json_t *o = json_object();
    hs_err perr = {0};
    if (strcmp(room->membership, "leave")) {
        json_t *st = hs_json_parse(room->remote_state, strlen(room->remote_state), &perr);
        if (!json_is_array(st)) json_decref(st), st = json_array();
        size_t i;
        json_t *ev;
        json_array_foreach(st, i, ev) {
            const char *type = json_string_value(json_object_get(ev, "type"));
            const char *sk = json_string_value(json_object_get(ev, "state_key"));
            if (!type || !sk || *sk) continue;
            bool name = !strcmp(type, "m.room.name");
            if (!name && strcmp(type, "m.room.avatar")) continue;
            json_t *v = json_object_get(json_object_get(ev, "content"), name ? "name" : "url");
            if (json_is_string(v) && json_string_length(v)) json_object_set(o, name ? "name" : "avatar", v);
        }
        json_object_set_new(o, "invite_state", st); /* knocks too, as Synapse */
        return o;
    }
    json_t *pdu = hs_json_parse_object(room->remote_event, strlen(room->remote_event), &perr);
    const room_version *v = room_version_get(room->remote_version);
    json_t *ev = pdu && v ? client_event_format(room->event_id, pdu, v, NULL, NULL, false, hs_now_ms())
                          : NULL;
    json_decref(pdu);
    json_t *timeline = json_array();
    if (ev) json_array_append_new(timeline, ev);
    json_object_set_new(o, "timeline", timeline);
    json_object_set_new(o, "limited", json_false());
    json_object_set_new(o, "num_live", json_integer(0));
    return o;
}

/* How many of the timeline's events came after the request's pos: a
 * client rings for a mention only in those (num_live). */
static int count_live(db_conn *c, const char *room_id, long long after, long long upto,
                      size_t in_timeline, long long *out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT count(*) FROM events WHERE room_id = $1 AND stream_ordering > $2"
        " AND stream_ordering <= $3 AND NOT outlier AND rejected_reason IS NULL AND NOT soft_failed");
    *out = 0;
    if (after < 0 || !in_timeline) return 0;
    char a[24], u[24];
    snprintf(a, sizeof a, "%lld", after);
    snprintf(u, sizeof u, "%lld", upto);
    PGresult *r = db_run(c, &q, 3, (const char *[]){room_id, a, u}, err);
    if (!r) return -1;
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    *out = n < (long long)in_timeline ? n : (long long)in_timeline;
    return 0;
}

int ss_room_object(db_conn *c, const char *user_id, const char *device_id, const ss_room *room,
                   ss_room_req *req, long long to, json_t **out, hs_err *err) {
    *out = NULL;
    bool initial = req->initial;
    if (room->remote_state) {
        if (!initial && room->member_pos <= req->since) return 0;
        json_t *o = remote_room_object(room);
        json_object_set_new(o, "bump_stamp", json_integer(room->bump_stamp));
        if (initial) json_object_set_new(o, "initial", json_true());
        if (room->is_dm) json_object_set_new(o, "is_dm", json_true());
        *out = o;
        return 0;
    }
    bool joined_or_left = strcmp(room->membership, "invite") && strcmp(room->membership, "knock");
    json_t *o = json_object();
    int rc = 0;
    if (!joined_or_left) {
        if (!initial && room->member_pos <= req->since) return json_decref(o), 0;
        rc = invite_state(c, user_id, room, o, err);
    } else {
        /* Nobody sees past their leave or ban. */
        long long upto = !strcmp(room->membership, "join") ? to : room->member_pos;
        long long after = initial || req->expanded ? 0 : req->since;
        json_t *timeline = json_array(), *state = json_array();
        bool more = false;
        long long first = upto, live = 0;
        rc = client_room_events_for(c, user_id, device_id, room->room_id, after, upto,
                                    req->timeline_limit, true, false, timeline, &more, &first, err);
        /* Ignored users' events go, but for their state events (spec), as
         * Synapse's sliding sync drops them: after the limit. */
        for (size_t i = json_array_size(timeline); req->ignored && i > 0; i--)
            if (client_ignored_event(req->ignored, json_array_get(timeline, i - 1)))
                json_array_remove(timeline, i - 1);
        if (rc == 0) rc = required_state(c, user_id, room, req, timeline, state, err);
        if (rc == 0 && !initial && !req->expanded && !json_array_size(timeline) &&
            !json_array_size(state)) {
            json_decref(timeline), json_decref(state), json_decref(o);
            return 0; /* nothing new in a room the client already has */
        }
        if (rc == 0)
            rc = count_live(c, room->room_id, req->live_since, upto, json_array_size(timeline),
                            &live, err);
        req->limited = more;
        char prev[32];
        snprintf(prev, sizeof prev, "t%lld", json_array_size(timeline) ? first - 1 : upto);
        if (json_array_size(timeline)) json_object_set(o, "timeline", timeline);
        if (json_array_size(state)) json_object_set(o, "required_state", state);
        json_object_set_new(o, "limited", json_boolean(more));
        json_object_set_new(o, "prev_batch", json_string(prev));
        json_object_set_new(o, "num_live", json_integer(live));
        /* The client asked for more timeline than it had (Synapse's name). */
        if (req->expanded) json_object_set_new(o, "unstable_expanded_timeline", json_true());
        json_decref(timeline), json_decref(state);
        json_t *unread = NULL;
        if (rc == 0) rc = client_push_unread(c, user_id, room->room_id, &unread, NULL, err);
        json_object_set_new(o, "notification_count",
                            json_integer(json_integer_value(json_object_get(unread, "notification_count"))));
        json_object_set_new(o, "highlight_count",
                            json_integer(json_integer_value(json_object_get(unread, "highlight_count"))));
        json_decref(unread);
    }
    if (rc == 0) rc = room_meta(c, user_id, room->room_id, o, err);
    json_object_set_new(o, "bump_stamp", json_integer(room->bump_stamp));
    if (initial) json_object_set_new(o, "initial", json_true());
    if (room->is_dm) json_object_set_new(o, "is_dm", json_true());
    if (rc < 0) return json_decref(o), -1;
    *out = o;
    return 0;
}
