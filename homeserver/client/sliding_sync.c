/* sliding_sync.c — POST /_matrix/client/unstable/org.matrix.simplified_msc3575/sync.
 *
 * `pos` is "<n>/<sync token>", n counting the connection's responses. What
 * a connection (user, device, conn_id) has been sent is remembered per pos
 * (sliding_conn.c), so a room is "initial" only the first time, later
 * responses carry only what changed since the connection last had the
 * room, and a widened required_state or a larger timeline_limit sends the
 * room's state or timeline again. A pos older than the previous one answers
 * 400 M_UNKNOWN_POS and the client starts over, which MSC4186 provides for.
 * A room joined with partial state is left out of the lists and
 * subscriptions that need all its members until it has them
 * (partial_rooms.h); its resync wakes a waiting request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "e2ee.h"
#include "homeserver/core/clock.h"
#include "partial_rooms.h"
#include "push_store.h"
#include "receipts.h"
#include "sliding_sync.h"
#include "sync_token.h"
#include "sync_wait.h"
#include "typing.h"

#define MAX_TIMELINE 100

/* ---- the request ---- */

typedef struct ss_request {
    json_t *body;
    bool has_pos;
    sync_token pos;
    const char *pos_str;
    long long seq;      /* the connection's count of responses, as of pos */
    long long timeout;
    ss_conn_id conn;
} ss_request;

static int parse(hs_req *r, ss_request *q, hs_err *err) {
    memset(q, 0, sizeof *q);
    q->body = r->json;
    const char *pos = hs_req_query(r, "pos"), *t = hs_req_query(r, "timeout");
    if (pos) {
        /* A plain sync token (an older pvyhs's pos) is malformed too: the
         * client starts over, as for an unknown pos. */
        if (!ss_pos_parse(pos, &q->seq, &q->pos))
            return hs_err_set(err, 400, "M_UNKNOWN_POS", "Malformed pos: start again without pos");
        q->has_pos = true;
        q->pos_str = pos;
    }
    q->timeout = t ? atoll(t) : 0;
    if (q->timeout < 0) q->timeout = 0;
    if (q->timeout > 600000) q->timeout = 600000;
    if (ss_request_check(q->body, err) < 0) return -1;
    const char *cid = json_string_value(json_object_get(q->body, "conn_id"));
    q->conn = (ss_conn_id){r->user_id, r->device_id ? r->device_id : "", cid ? cid : ""};
    return 0;
}

static int limit_of(const json_t *cfg) {
    json_t *l = json_object_get(cfg, "timeline_limit");
    long long v = json_is_integer(l) ? json_integer_value(l) : 0;
    return (int)(v < 0 ? 0 : v > MAX_TIMELINE ? MAX_TIMELINE : v);
}

/* Merge a list's or subscription's wishes into the room's request. */
static void want_room(json_t *reqs, const char *room_id, const json_t *cfg) {
    json_t *r = json_object_get(reqs, room_id);
    if (!r) json_object_set_new(reqs, room_id, r = json_pack("{s:[], s:i}", "required_state", "timeline_limit", 0));
    json_array_extend(json_object_get(r, "required_state"), json_object_get(cfg, "required_state"));
    if (limit_of(cfg) > json_integer_value(json_object_get(r, "timeline_limit")))
        json_object_set_new(r, "timeline_limit", json_integer(limit_of(cfg)));
}

/* ---- lists: filter, sort by activity, cut the ranges ---- */

static bool type_in(const json_t *types, const char *type) {
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t) {
        if (json_is_null(t) && !type) return true;
        if (json_is_string(t) && type && !strcmp(json_string_value(t), type)) return true;
    }
    return false;
}

/* A list's or subscription's rooms: those with partial state only when
 * its required_state makes do with it (partial_rooms.h). */
static bool shown(const ss_room *x, const json_t *cfg, const char *server_name) {
    return !x->partial || !ss_needs_full_state(json_object_get(cfg, "required_state"), server_name);
}

static bool tagged(const ss_room *x, const json_t *tags) {
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) if (json_is_string(t) && json_object_get(x->tags, json_string_value(t))) return true;
    return false;
}

static bool passes(const ss_room *x, const json_t *f) {
    json_t *v;
    if (!f) return true;
    if ((v = json_object_get(f, "is_dm")) && json_is_boolean(v) && json_is_true(v) != x->is_dm) return false;
    if ((v = json_object_get(f, "is_encrypted")) && json_is_boolean(v) && json_is_true(v) != x->encrypted)
        return false;
    bool invite = !strcmp(x->membership, "invite");
    if ((v = json_object_get(f, "is_invite")) && json_is_boolean(v) && json_is_true(v) != invite) return false;
    if ((v = json_object_get(f, "room_types")) && json_is_array(v) && !type_in(v, x->room_type)) return false;
    if ((v = json_object_get(f, "not_room_types")) && json_is_array(v) && type_in(v, x->room_type)) return false;
    if ((v = json_object_get(f, "tags")) && json_is_array(v) && !tagged(x, v)) return false;
    if ((v = json_object_get(f, "not_tags")) && json_is_array(v) && tagged(x, v)) return false;
    return true;
}

static int by_bump(const void *a, const void *b) {
    const ss_room *x = *(ss_room *const *)a, *y = *(ss_room *const *)b;
    return x->bump_stamp < y->bump_stamp ? 1 : x->bump_stamp > y->bump_stamp ? -1 : strcmp(x->room_id, y->room_id);
}

static void apply_lists(const json_t *lists, ss_room *rooms, size_t n, const char *server_name,
                        json_t *reqs, json_t *out) {
    const char *name;
    json_t *cfg;
    ss_room **sel = calloc(n + 1, sizeof *sel);
    json_object_foreach((json_t *)lists, name, cfg) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (rooms[i].listed && passes(&rooms[i], json_object_get(cfg, "filters")) &&
                shown(&rooms[i], cfg, server_name))
                sel[m++] = &rooms[i];
        qsort(sel, m, sizeof *sel, by_bump);
        /* count, and the rooms of each range as a SYNC op, as Synapse
         * answers (clients of the simplified protocol read only count). */
        json_t *ops = json_array();
        json_object_set_new(out, name, json_pack("{s:I, s:o}", "count", (json_int_t)m, "ops", ops));
        size_t k;
        json_t *range;
        json_array_foreach(json_object_get(cfg, "ranges"), k, range) {
            json_int_t lo = json_integer_value(json_array_get(range, 0));
            json_int_t hi = json_integer_value(json_array_get(range, 1));
            json_t *ids = json_array();
            for (json_int_t i = lo < 0 ? 0 : lo; i <= hi && i < (json_int_t)m; i++) {
                want_room(reqs, sel[i]->room_id, cfg);
                json_array_append_new(ids, json_string(sel[i]->room_id));
            }
            json_array_append_new(ops, json_pack("{s:s, s:[I, I], s:o}", "op", "SYNC", "range", lo, hi,
                                                 "room_ids", ids));
        }
    }
    free(sel);
}

static ss_room *find_room(ss_room *rooms, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rooms[i].room_id, id)) return &rooms[i];
    return NULL;
}

/* ---- extensions ---- */

static bool ext_on(const json_t *body, const char *name) {
    return json_is_true(json_object_get(json_object_get(json_object_get(body, "extensions"), name), "enabled"));
}

static const json_t *ext_cfg(const json_t *body, const char *name) {
    return json_object_get(json_object_get(body, "extensions"), name);
}

static bool listed(const json_t *names, const char *name) {
    size_t i;
    json_t *v;
    if (!json_is_array(names)) return true; /* absent: ["*"] */
    json_array_foreach(names, i, v) if (json_is_string(v) && (!strcmp(json_string_value(v), "*") ||
                                                             !strcmp(json_string_value(v), name))) return true;
    return false;
}

/* The rooms an extension covers: those of the response's lists and
 * subscriptions that its `lists` and `rooms` name (both default to "*"), as
 * Synapse's find_relevant_room_ids_for_extension. */
static json_t *ext_rooms(const json_t *cfg, const json_t *body, const json_t *lists_out,
                         const json_t *reqs) {
    json_t *out = json_object(), *l, *op, *id;
    const char *name;
    size_t i, j;
    json_object_foreach((json_t *)lists_out, name, l) {
        if (!listed(json_object_get(cfg, "lists"), name)) continue;
        json_array_foreach(json_object_get(l, "ops"), i, op)
            json_array_foreach(json_object_get(op, "room_ids"), j, id)
                json_object_set_new(out, json_string_value(id), json_true());
    }
    json_t *v;
    json_object_foreach(json_object_get(body, "room_subscriptions"), name, v)
        if (json_object_get(reqs, name) && listed(json_object_get(cfg, "rooms"), name))
            json_object_set_new(out, name, json_true());
    return out;
}

/* Has the connection had this room's `what` (account data, receipts)? If
 * not, it gets all of it, not only what changed (Synapse: NEVER vs LIVE). */
static bool had(const json_t *base, const char *room_id, const char *what) {
    return json_is_true(json_object_get(json_object_get(base, room_id), what));
}

static void mark(json_t *recs, const char *room_id, const char *what) {
    json_t *rec = json_object_get(recs, room_id);
    if (rec) json_object_set_new(rec, what, json_true());
}

/* Split rooms into those the connection has had `what` of and the others. */
static size_t split(const json_t *rooms, const json_t *base, const char *what, const char **old,
                    const char **fresh, size_t *n_fresh) {
    size_t n_old = 0;
    const char *id;
    json_t *v;
    *n_fresh = 0;
    json_object_foreach((json_t *)rooms, id, v) {
        if (had(base, id, what)) old[n_old++] = id;
        else fresh[(*n_fresh)++] = id;
    }
    return n_old;
}

static int ext_account_data(db_conn *c, hs_req *r, const ss_request *q, const sync_token *now,
                            const json_t *rooms, const json_t *base, json_t *recs, json_t *ext,
                            bool *any, hs_err *err) {
    long long from = q->has_pos ? q->pos.pos[DB_STREAM_ACCOUNT_DATA] : 0;
    long long to = now->pos[DB_STREAM_ACCOUNT_DATA];
    json_t *global = json_array(), *changed = json_object(), *all = NULL, *pr = NULL;
    int rc = client_account_data_sync(c, r->user_id, from, to, global, changed, err);
    /* m.push_rules is account data to clients (Element X reads it here). */
    if (rc == 0) rc = client_push_rules_account_data(c, r->user_id, from, to, &pr, err);
    if (pr) json_array_append_new(global, pr);
    const char *id;
    json_t *v;
    bool need_all = false;
    json_object_foreach((json_t *)rooms, id, v) need_all |= !had(base, id, "ad");
    if (rc == 0 && need_all && from > 0)
        rc = client_account_data_sync(c, r->user_id, 0, to, NULL, all = json_object(), err);
    json_t *by_room = json_object();
    json_object_foreach((json_t *)rooms, id, v) {
        json_t *evs = json_object_get(had(base, id, "ad") || !all ? changed : all, id);
        if (json_array_size(evs)) json_object_set(by_room, id, evs);
        mark(recs, id, "ad");
    }
    json_decref(changed), json_decref(all);
    *any |= json_array_size(global) || json_object_size(by_room);
    json_object_set_new(ext, "account_data", json_pack("{s:o, s:o}", "global", global, "rooms", by_room));
    return rc;
}

static int ext_receipts(db_conn *c, hs_req *r, const ss_request *q, const sync_token *now,
                        const json_t *rooms, const json_t *base, json_t *recs, json_t *ext,
                        bool *any, hs_err *err) {
    size_t n = json_object_size(rooms), n_fresh;
    const char **old = calloc(n + 1, sizeof *old), **fresh = calloc(n + 1, sizeof *fresh);
    size_t n_old = split(rooms, base, "rcpt", old, fresh, &n_fresh);
    json_t *by_room = json_object();
    long long from = q->has_pos ? q->pos.pos[DB_STREAM_RECEIPTS] : 0, to = now->pos[DB_STREAM_RECEIPTS];
    int rc = n_old ? client_receipts_sync(c, r->user_id, old, n_old, from, to, by_room, err) : 0;
    /* A room new to the connection: its receipts as they stand. */
    if (rc == 0 && n_fresh) rc = client_receipts_sync(c, r->user_id, fresh, n_fresh, 0, to, by_room, err);
    for (size_t i = 0; i < n_fresh; i++) mark(recs, fresh[i], "rcpt");
    free(old), free(fresh);
    *any |= json_object_size(by_room) > 0;
    json_object_set_new(ext, "receipts", json_pack("{s:o}", "rooms", by_room));
    return rc;
}

static int extensions(db_conn *c, hs_req *r, const ss_request *q, const sync_token *now,
                      const json_t *lists_out, const json_t *reqs, const json_t *base,
                      json_t *recs, json_t *ext, bool *any, hs_err *err) {
    const json_t *b = q->body;
    int rc = 0;
    if (ext_on(b, "to_device")) {
        const json_t *td = ext_cfg(b, "to_device");
        const char *since = json_string_value(json_object_get(td, "since"));
        long long from = since ? atoll(since) : 0, next = now->pos[DB_STREAM_TO_DEVICE];
        /* limit: 100 by default, as Synapse; at most 1,000 a response. */
        json_t *lim = json_object_get(td, "limit");
        json_int_t limit = json_is_integer(lim) ? json_integer_value(lim) : E2EE_TO_DEVICE_SYNC_LIMIT;
        limit = limit < 1 ? 1 : limit > 1000 ? 1000 : limit;
        json_t *evs = json_array();
        rc = client_to_device_sync_limit(c, r->user_id, r->device_id, from, next, (int)limit, evs,
                                         &next, err);
        char nb[24];
        snprintf(nb, sizeof nb, "%lld", next);
        *any |= json_array_size(evs) > 0;
        json_object_set_new(ext, "to_device", json_pack("{s:s, s:o}", "next_batch", nb, "events", evs));
    }
    if (rc == 0 && ext_on(b, "e2ee")) {
        json_t *changed = json_array(), *left = json_array(), *counts = NULL, *fb = NULL;
        if (q->has_pos)
            rc = client_device_lists_sync(c, r->user_id, q->pos.pos[DB_STREAM_DEVICE_LISTS],
                                          now->pos[DB_STREAM_DEVICE_LISTS], changed, left, err);
        if (rc == 0) rc = client_otk_counts(c, r->user_id, r->device_id, &counts, &fb, err);
        *any |= json_array_size(changed) || json_array_size(left);
        json_object_set_new(ext, "e2ee", json_pack("{s:{s:o, s:o}, s:o, s:o}", "device_lists", "changed",
                                                   changed, "left", left, "device_one_time_keys_count",
                                                   counts ? counts : json_object(),
                                                   "device_unused_fallback_key_types", fb ? fb : json_array()));
    }
    if (rc == 0 && ext_on(b, "account_data")) {
        json_t *rooms = ext_rooms(ext_cfg(b, "account_data"), b, lists_out, reqs);
        rc = ext_account_data(c, r, q, now, rooms, base, recs, ext, any, err);
        json_decref(rooms);
    }
    if (rc == 0 && ext_on(b, "receipts")) {
        json_t *rooms = ext_rooms(ext_cfg(b, "receipts"), b, lists_out, reqs);
        rc = ext_receipts(c, r, q, now, rooms, base, recs, ext, any, err);
        json_decref(rooms);
    }
    if (rc == 0 && ext_on(b, "typing")) {
        json_t *rooms = ext_rooms(ext_cfg(b, "typing"), b, lists_out, reqs), *by_room = json_object(), *v;
        long long from = q->has_pos ? q->pos.pos[DB_STREAM_TYPING] : 0;
        const char *id;
        json_object_foreach(rooms, id, v) {
            /* A room new to the connection: who is typing there now. */
            long long f = json_object_get(base, id) ? from : 0;
            json_t *t = client_typing_sync(id, f, now->pos[DB_STREAM_TYPING]);
            if (t) json_object_set_new(by_room, id, t), *any = true;
        }
        json_decref(rooms);
        json_object_set_new(ext, "typing", json_pack("{s:o}", "rooms", by_room));
    }
    return rc;
}

/* ---- one pass and the handler ---- */

/* What the connection has of a room (rec, NULL: nothing) decides what the
 * room's object carries; the new record goes into recs. */
static int one_room(db_conn *c, hs_req *r, const ss_room *room, const char *id, const json_t *cfg,
                    const json_t *rec, long long since, long long to, const json_t *ignored,
                    json_t *recs, json_t *rooms_out, hs_err *err) {
    ss_room_req req = {.room_id = (char *)id, .required_state = json_object_get(cfg, "required_state"),
                       .timeline_limit = (int)json_integer_value(json_object_get(cfg, "timeline_limit")),
                       .live_since = since, .ignored = ignored};
    bool newly_joined = since >= 0 && !strcmp(room->membership, "join") && room->member_pos > since;
    req.initial = !rec || newly_joined;
    long long old_tl = json_integer_value(json_object_get(rec, "tl"));
    if (!req.initial) {
        req.since = json_integer_value(json_object_get(rec, "to"));
        req.state_again = ss_required_state_widened(json_object_get(rec, "rs"), req.required_state);
        req.expanded = req.timeline_limit > old_tl;
    }
    json_t *lazy = req.initial ? NULL : json_object_get(rec, "lazy");
    req.lazy_sent = json_is_object(lazy) ? json_deep_copy(lazy) : json_object();
    json_t *o = NULL;
    /* Nothing happened in the room since the connection had it: no query
     * (most rooms of a window, on most requests). */
    bool quiet = !req.initial && !req.state_again && !req.expanded && room->last_pos <= req.since &&
                 room->member_pos <= req.since;
    int rc = quiet ? 0 : ss_room_object(c, r->user_id, r->device_id, room, &req, to, &o, err);
    if (rc < 0) return json_decref(req.lazy_sent), -1;
    if (o) json_object_set_new(rooms_out, id, o);
    /* The timeline_limit the client has had: a smaller one counts only when
     * it cut the timeline (then a larger one later has more to send). */
    long long tl = req.initial || req.expanded || (req.limited && req.timeline_limit < old_tl)
                       ? req.timeline_limit : old_tl;
    json_object_set_new(recs, id, json_pack("{s:I, s:O, s:I, s:o}", "to", (json_int_t)to, "rs",
                                            req.required_state, "tl", (json_int_t)tl, "lazy",
                                            req.lazy_sent));
    /* What the extensions sent of the room stays sent (ext_account_data). */
    for (int i = 0; rec && !req.initial && i < 2; i++) {
        json_t *v = json_object_get(rec, i ? "rcpt" : "ad");
        if (v) json_object_set(json_object_get(recs, id), i ? "rcpt" : "ad", v);
    }
    return 0;
}

static int rooms_part(db_conn *c, hs_req *r, const ss_request *q, const sync_token *now,
                      const json_t *base, json_t *recs, json_t *lists_out, json_t *rooms_out,
                      json_t *reqs, char ***joined, size_t *n_joined, hs_err *err) {
    hs_err none = {0};
    json_t *direct = client_account_data_get(c, r->user_id, NULL, "m.direct", &none);
    json_t *ign = client_account_data_get(c, r->user_id, NULL, "m.ignored_user_list", &none);
    const json_t *ignored = json_object_size(json_object_get(ign, "ignored_users"))
                                ? json_object_get(ign, "ignored_users")
                                : NULL;
    ss_room *rooms = NULL;
    size_t n = 0;
    long long since = q->has_pos ? q->pos.pos[DB_STREAM_EVENTS] : -1, to = now->pos[DB_STREAM_EVENTS];
    const json_t *subs = json_object_get(q->body, "room_subscriptions");
    const char **sub_ids = calloc(json_object_size(subs) + 1, sizeof *sub_ids);
    size_t n_subs = 0;
    const char *id;
    json_t *cfg;
    json_object_foreach((json_t *)subs, id, cfg) sub_ids[n_subs++] = id;
    int rc = ss_user_rooms(c, r->user_id, since, to, direct, ignored, sub_ids, n_subs, &rooms, &n,
                           err);
    free(sub_ids);
    json_decref(direct);
    if (rc < 0) return json_decref(ign), -1;
    json_t *lists = json_object_get(q->body, "lists");
    const char *me = r->srv->cfg->server_name;
    if (lists) apply_lists(lists, rooms, n, me, reqs, lists_out);
    /* A subscription to a room the user has no membership of gets nothing:
     * no leak of rooms they cannot see. */
    json_object_foreach(json_object_get(q->body, "room_subscriptions"), id, cfg) {
        ss_room *room = find_room(rooms, n, id);
        if (room && json_is_object(cfg) && shown(room, cfg, me)) want_room(reqs, id, cfg);
    }
    json_object_foreach(reqs, id, cfg) {
        ss_room *room = find_room(rooms, n, id);
        if (room && (rc = one_room(c, r, room, id, cfg, json_object_get(base, id), since, to,
                                   ignored, recs, rooms_out, err)) < 0)
            break;
    }
    json_decref(ign);
    *joined = calloc(n + 1, sizeof **joined);
    *n_joined = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rooms[i].membership, "join")) (*joined)[(*n_joined)++] = strdup(rooms[i].room_id);
    ss_rooms_free(rooms, n);
    return rc;
}

/* One pass: the response and, in *recs, the connection's room records
 * after it (committed only when the response goes out). */
static json_t *build(hs_req *r, const ss_request *q, const sync_token *now, bool *any,
                     char ***joined, size_t *n_joined, json_t **recs, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    json_t *base = c ? ss_conn_begin(c, &q->conn, q->has_pos ? q->pos_str : NULL, err) : NULL;
    if (!base) {
        db_release(r->srv->db, c);
        return NULL;
    }
    *recs = json_deep_copy(base);
    json_t *lists = json_object(), *rooms = json_object(), *ext = json_object(), *reqs = json_object();
    int rc = rooms_part(c, r, q, now, base, *recs, lists, rooms, reqs, joined, n_joined, err);
    if (rc == 0) rc = extensions(c, r, q, now, lists, reqs, base, *recs, ext, any, err);
    db_release(r->srv->db, c);
    json_decref(reqs);
    json_decref(base);
    *any |= json_object_size(rooms) > 0;
    if (rc < 0) {
        json_decref(lists), json_decref(rooms), json_decref(ext), json_decref(*recs);
        *recs = NULL;
        return NULL;
    }
    char tok[256];
    int k = snprintf(tok, sizeof tok, "%lld/", q->seq + 1);
    sync_token_format(now, tok + k, sizeof tok - (size_t)k);
    return json_pack("{s:s, s:o, s:o, s:o}", "pos", tok, "lists", lists, "rooms", rooms,
                     "extensions", ext);
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

static int post_sliding_sync(hs_req *r, json_t **out, hs_err *err) {
    ss_request q;
    if (parse(r, &q, err) < 0) return -1;
    long long deadline = sync_wait_begin(r, q.timeout);
    for (;;) {
        sync_token now;
        sync_token_now(&now);
        bool any = false;
        char **joined = NULL;
        size_t n = 0;
        json_t *recs = NULL;
        json_t *resp = build(r, &q, &now, &any, &joined, &n, &recs, err);
        if (!resp) return free_ids(joined, n), -1;
        bool wait = !any && q.has_pos && deadline && hs_now_ms() < deadline &&
                    !atomic_load(&r->srv->stopping);
        if (wait && sync_wait_park(r, joined, n, &now)) {
            json_decref(resp), json_decref(recs);
            free_ids(joined, n);
            return HS_SUSPENDED;
        }
        free_ids(joined, n);
        if (!wait) {
            db_conn *c = db_acquire(r->srv->db, err);
            int rc = c ? ss_conn_commit(c, &q.conn, q.has_pos ? q.pos_str : NULL,
                                        json_string_value(json_object_get(resp, "pos")), recs, err)
                       : -1;
            db_release(r->srv->db, c);
            json_decref(recs);
            if (rc < 0) return json_decref(resp), -1;
            *out = resp;
            return 200;
        }
        json_decref(resp), json_decref(recs);
    }
}

void client_sliding_sync_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
             post_sliding_sync, HS_AUTH | HS_GUEST);
}
