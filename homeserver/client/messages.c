/* messages.c — GET /rooms/{roomId}/messages and /context/{eventId}.
 *
 * Pagination tokens are stream positions ("t<pos>": the point just after
 * the event at pos); /sync's tokens are accepted too. A user sees the room up
 * to now while joined, up to their leave otherwise, and within that only
 * what the room's history visibility lets them see. History pulled from
 * other servers (backfill) has negative positions ("t-12"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "events_read.h"
#include "filters.h"
#include "homeserver/core/log.h"
#include "homeserver/db/streams.h"
#include "remote_rooms.h"
#include "room_access.h"
#include "sync_token.h"

#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000

/* The highest position the user may read (room_access.h): now while
 * joined or peeking into a world-readable room, their last membership event
 * otherwise; -2 with err when none. */
static long long read_horizon(db_conn *c, const char *room_id, const char *user_id, hs_err *err) {
    client_room_view v;
    if (client_room_view_of(c, room_id, user_id, &v, err) < 0) return -2;
    if (v.horizon < 0) /* left at an event pulled by backfill: nothing of ours to read */
        return hs_err_set(err, 403, "M_FORBIDDEN", "User %s not in room %s", user_id, room_id), -2;
    return v.horizon;
}

static int parse_limit(hs_req *r, int *limit, hs_err *err) {
    const char *l = hs_req_query(r, "limit");
    *limit = DEFAULT_LIMIT;
    if (!l) return 0;
    char *end;
    long v = strtol(l, &end, 10);
    if (*end || end == l || v < 0) return hs_err_set(err, 400, "M_INVALID_PARAM", "bad limit");
    *limit = v > MAX_LIMIT ? MAX_LIMIT : (int)v;
    return 0;
}

/* Going backwards past the oldest event stored of a room joined over
 * federation: its history is pulled from a server in the room (as Synapse's
 * _maybe_backfill does when a page comes up short), and the page is read
 * again. The connection is let go meanwhile: that takes network round trips.
 * Returns how many events came (0 when none could), -1 on a database error. */
static int backfill_page(hs_req *r, db_conn **c, int limit, hs_err *err) {
    const client_remote_rooms *ops = client_remote_rooms_get();
    if (!ops || !ops->backfill) return 0;
    db_release(r->srv->db, *c);
    hs_err e = {0};
    /* A few more than asked, as Synapse does: hidden events take room. */
    int got = ops->backfill(r->srv, r->params[0], limit < 10 ? 20 : 2 * limit, &e);
    if (got < 0) hs_warn("messages: backfill of %s: %s", r->params[0], e.msg);
    *c = db_acquire(r->srv->db, err);
    return *c ? (got > 0 ? got : 0) : -1;
}

/* Stream position of a timeline event, or -1 with err. */
static long long stream_pos(db_conn *c, const char *event_id, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT stream_ordering FROM events WHERE event_id = $1");
    PGresult *r = db_run(c, &q, 1, (const char *[]){event_id ? event_id : ""}, err);
    if (!r) return -1;
    long long pos = PQntuples(r) && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    if (pos < 0) hs_err_set(err, 500, "M_UNKNOWN", "no position for %s", event_id);
    return pos;
}

/* The viewer's m.ignored_user_list (caller frees), whose ignored_users
 * object page_filtered takes; NULL when there is none. */
static json_t *ignore_list(db_conn *c, const char *user_id) {
    hs_err none = {0};
    return client_account_data_get(c, user_id, NULL, "m.ignored_user_list", &none);
}

/* Up to limit events of the room in (lo, hi] that the viewer may see, that
 * the filter lets through and whose sender the viewer does not ignore
 * (ignored: the ignored_users object, or NULL), appended to out in
 * chronological order, with
 * *more and *edge as client_room_events_for gives them. Filtered-out events
 * are stepped over a page of `limit` (at least 10) at a time, for at most a
 * few pages (then *more says there is more, and the client asks again from
 * *edge). */
#define FILTER_ROUNDS 8
static int page_filtered(db_conn *c, hs_req *r, const client_filter_part *f,
                         const json_t *ignored, long long lo, long long hi, int limit, bool back,
                         json_t *out, bool *more, long long *edge, hs_err *err) {
    if (!client_filter_sifts(f) && json_object_size(ignored) == 0)
        return client_room_events_for(c, r->user_id, r->device_id, r->params[0], lo, hi, limit,
                                      back, true, out, more, edge, err);
    *more = false;
    if (client_filter_blocks_all(f)) return 0;
    json_t *got = json_array(); /* chronological */
    int rc = 0, read = limit < 10 ? 10 : limit;
    for (int round = 0; round < FILTER_ROUNDS && lo < hi && (int)json_array_size(got) < limit;
         round++) {
        json_t *batch = json_array(), *kept = json_array();
        bool m = false;
        long long e = *edge;
        rc = client_room_events_for(c, r->user_id, r->device_id, r->params[0], lo, hi, read, back,
                                    true, batch, &m, &e, err);
        size_t i;
        json_t *ev;
        json_array_foreach(batch, i, ev) {
            if (client_filter_event_allowed(f, ev) && !client_ignored_event(ignored, ev))
                json_array_append(kept, ev);
        }
        if (back) json_array_extend(kept, got), json_array_clear(got), json_array_extend(got, kept);
        else json_array_extend(got, kept);
        json_decref(batch), json_decref(kept);
        if (rc < 0) break;
        *edge = e, *more = m || round == FILTER_ROUNDS - 1;
        if (!m) break;
        if (back) hi = e - 1;
        else lo = e;
    }
    /* One page too many: keep the limit nearest the start, and end there. */
    size_t n = json_array_size(got);
    if (rc == 0 && n > (size_t)limit) {
        json_t *keep = json_array();
        for (size_t i = back ? n - (size_t)limit : 0, k = 0; k < (size_t)limit; i++, k++)
            json_array_append(keep, json_array_get(got, i));
        const json_t *last = json_array_get(keep, back ? 0 : (size_t)limit - 1);
        long long pos = stream_pos(c, json_string_value(json_object_get(last, "event_id")), err);
        json_decref(got);
        got = keep;
        if (pos < 0) rc = -1;
        else *edge = pos, *more = true;
    }
    if (rc == 0) json_array_extend(out, got);
    json_decref(got);
    return rc;
}

/* The member events of the events' senders as of the event at_id (after it),
 * appended to out; with others, the rest of that state too (/context's
 * lazy loading), with all, every state event. */
static int state_for(db_conn *c, const char *at_id, const json_t *events, bool others, bool all,
                     json_t *out, hs_err *err) {
    room_state_map *st = room_state_map_new();
    if (!st) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    int rc = room_store_state_at(c, at_id, true, st, err);
    size_t cap = room_state_map_count(st) + 1, n = 0;
    const char **ids = calloc(cap, sizeof *ids);
    if (rc == 0 && !ids) rc = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    size_t it = 0;
    const char *t, *k, *id;
    while (rc == 0 && room_state_map_next(st, &it, &t, &k, &id)) {
        bool want = all || (others && strcmp(t, "m.room.member") != 0);
        size_t i;
        json_t *ev;
        if (!want && !strcmp(t, "m.room.member"))
            json_array_foreach(events, i, ev) {
                const char *sender = json_string_value(json_object_get(ev, "sender"));
                if (sender && !strcmp(sender, k)) {
                    want = true;
                    break;
                }
            }
        if (want && n < cap) ids[n++] = id;
    }
    if (rc == 0 && n) rc = client_events_by_ids(c, ids, n, true, out, err);
    free(ids);
    room_state_map_free(st);
    return rc;
}

static int get_messages(hs_req *r, json_t **out, hs_err *err) {
    const char *dir = hs_req_query(r, "dir"), *from = hs_req_query(r, "from"),
               *to = hs_req_query(r, "to");
    int limit;
    /* Without dir, forwards, as Synapse reads it (the spec requires it;
     * Complement's forgotten-room test leaves it out). */
    if (!dir) dir = "f";
    if (strcmp(dir, "b") && strcmp(dir, "f"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "dir must be 'b' or 'f'");
    if (parse_limit(r, &limit, err) < 0) return -1;
    client_filter_part *filter = client_room_event_filter_load(hs_req_query(r, "filter"), err);
    if (!filter) return -1;
    bool back = dir[0] == 'b';
    long long f = SYNC_TOKEN_POS_MIN, t = SYNC_TOKEN_POS_MIN;
    if ((from && !sync_token_pagination_pos(from, &f)) || (to && !sync_token_pagination_pos(to, &t)))
        return client_filter_part_free(filter),
               hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid pagination token");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return client_filter_part_free(filter), -1;
    long long horizon = read_horizon(c, r->params[0], r->user_id, err);
    json_t *ign = ignore_list(c, r->user_id);
    const json_t *ignored = json_object_get(ign, "ignored_users");
    int rc = -1;
    if (horizon < 0) goto done;
    if (!from) f = back ? horizon : SYNC_TOKEN_POS_MIN;
    long long lo, hi;
    if (back) hi = f < horizon ? f : horizon, lo = t;
    else lo = f, hi = to && t < horizon ? t : horizon;
    json_t *chunk = json_array();
    bool more = false;
    long long edge = back ? hi : lo;
    if (lo < hi &&
        page_filtered(c, r, filter, ignored, lo, hi, limit, back, chunk, &more, &edge, err) < 0) {
        json_decref(chunk);
        goto done;
    }
    if (back && !more && !to && lo < hi && (int)json_array_size(chunk) < limit) {
        int got = backfill_page(r, &c, limit, err);
        if (got < 0) {
            json_decref(chunk);
            goto done;
        }
        if (got > 0) {
            json_array_clear(chunk);
            edge = hi;
            if (page_filtered(c, r, filter, ignored, lo, hi, limit, back, chunk, &more, &edge,
                              err) < 0) {
                json_decref(chunk);
                goto done;
            }
        }
    }
    /* /messages lists dir=b newest first. */
    if (back) {
        json_t *rev = json_array();
        for (size_t i = json_array_size(chunk); i > 0; i--) json_array_append(rev, json_array_get(chunk, i - 1));
        json_decref(chunk);
        chunk = rev;
    }
    char start[32], end[32];
    snprintf(start, sizeof start, "t%lld", back ? hi : lo);
    snprintf(end, sizeof end, "t%lld", back ? edge - 1 : edge);
    /* A page with events always has an end, as in Synapse (Complement
     * expects it): the client asks again from it, and an empty page ends
     * the walk (after a backfill there may be older history still). */
    bool any = json_array_size(chunk) > 0;
    /* Lazy-loading members: those of the page's senders, as of its first
     * event (Synapse), so the client can name them. */
    json_t *state = json_array();
    const char *first = json_string_value(json_object_get(json_array_get(chunk, 0), "event_id"));
    if (filter->lazy_load_members && first &&
        state_for(c, first, chunk, false, false, state, err) < 0) {
        json_decref(state), json_decref(chunk);
        goto done;
    }
    *out = json_pack("{s:o, s:s}", "chunk", chunk, "start", start);
    if (more || any) json_object_set_new(*out, "end", json_string(end));
    if (json_array_size(state)) json_object_set(*out, "state", state);
    json_decref(state);
    rc = 200;
done:
    db_release(r->srv->db, c);
    client_filter_part_free(filter);
    json_decref(ign);
    return rc;
}

/* Position of an event of the room, for /context (negative for history
 * pulled by backfill). false with err when there is none. */
static bool event_pos(db_conn *c, const char *room_id, const char *event_id, long long *pos,
                      hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT stream_ordering FROM events WHERE event_id = $1 AND room_id = $2"
        " AND stream_ordering IS NOT NULL AND rejected_reason IS NULL");
    PGresult *r = db_run(c, &q, 2, (const char *[]){event_id, room_id}, err);
    if (!r) return false;
    bool found = PQntuples(r) > 0;
    if (found) *pos = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!found) hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
    return found;
}

static int get_context(hs_req *r, json_t **out, hs_err *err) {
    int limit;
    if (parse_limit(r, &limit, err) < 0) return -1;
    client_filter_part *filter = client_room_event_filter_load(hs_req_query(r, "filter"), err);
    if (!filter) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return client_filter_part_free(filter), -1;
    int rc = -1;
    json_t *mid = json_array(), *before = json_array(), *after = json_array();
    json_t *ign = ignore_list(c, r->user_id);
    const json_t *ignored = json_object_get(ign, "ignored_users");
    long long horizon = read_horizon(c, r->params[0], r->user_id, err);
    long long pos = 0;
    if (horizon < 0 || !event_pos(c, r->params[0], r->params[1], &pos, err)) goto done;
    bool more;
    long long e1 = pos, e2 = pos, unused;
    /* The event itself, through the visibility filter like its neighbours
     * (not the ignore list: it was asked for by its ID). */
    if (pos > horizon ||
        client_room_events_for(c, r->user_id, r->device_id, r->params[0], pos - 1, pos, 1, false,
                               true, mid, &more, &unused, err) < 0)
        goto done;
    if (json_array_size(mid) == 0) {
        hs_err_set(err, 404, "M_NOT_FOUND", "Event not found");
        goto done;
    }
    int nb = limit / 2, na = limit - nb;
    if (page_filtered(c, r, filter, ignored, SYNC_TOKEN_POS_MIN, pos - 1, nb, true, before, &more,
                      &e1, err) < 0 ||
        page_filtered(c, r, filter, ignored, pos, horizon, na, false, after, &more, &e2, err) < 0)
        goto done;
    json_t *rev = json_array();
    for (size_t i = json_array_size(before); i > 0; i--) json_array_append(rev, json_array_get(before, i - 1));
    char start[32], end[32];
    snprintf(start, sizeof start, "t%lld", e1 - 1);
    snprintf(end, sizeof end, "t%lld", e2);
    /* The state as of the last event returned (the spec's words); with
     * lazy-loading, its members only those of the senders shown. */
    json_t *state = json_array(), *shown = json_array();
    json_array_extend(shown, before), json_array_extend(shown, mid), json_array_extend(shown, after);
    const json_t *last = json_array_size(after) ? json_array_get(after, json_array_size(after) - 1)
                                                : json_array_get(mid, 0);
    int st = state_for(c, json_string_value(json_object_get(last, "event_id")), shown, true,
                       !filter->lazy_load_members, state, err);
    json_decref(shown);
    if (st < 0) {
        json_decref(rev), json_decref(state);
        goto done;
    }
    *out = json_pack("{s:O, s:o, s:O, s:s, s:s, s:o}", "event", json_array_get(mid, 0),
                     "events_before", rev, "events_after", after, "start", start, "end", end,
                     "state", state);
    rc = 200;
done:
    json_decref(mid), json_decref(before), json_decref(after);
    json_decref(ign);
    db_release(r->srv->db, c);
    client_filter_part_free(filter);
    return rc;
}

void client_messages_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/messages", get_messages, HS_AUTH | HS_R0 | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/context/{eventId}", get_context, HS_AUTH | HS_R0 | HS_GUEST);
}
