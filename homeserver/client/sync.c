/* sync.c — GET /sync: initial and incremental, long-polling without a thread.
 *
 * With nothing new and a timeout, the request parks (hs_req_suspend) after
 * registering with the notifier for the user and their rooms, and with the
 * timer for the timeout; whichever fires first resumes it and the handler
 * runs again. A wake for something this filter hides parks it again until
 * the deadline. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "notifier.h"
#include "sync_format.h"
#include "sync_rooms.h"
#include "sync_share.h"
#include "sync_token.h"
#include "sync_wait.h"
#include "account_data.h"
#include "e2ee.h"
#include "filters.h"
#include "presence.h"
#include "push_actions.h"
#include "push_store.h"
#include "receipts.h"
#include "typing.h"

#define MAX_TIMEOUT_MS (10LL * 60 * 1000)

typedef struct sync_opts {
    sync_token since;
    bool has_since;
    long long timeout;
    sync_params p;
} sync_opts;

static int parse_opts(hs_req *r, sync_opts *o, hs_err *err) {
    memset(o, 0, sizeof *o);
    const char *since = hs_req_query(r, "since");
    if (since) {
        if (!sync_token_parse(since, &o->since))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "Malformed since token");
        o->has_since = true;
    }
    const char *t = hs_req_query(r, "timeout");
    o->timeout = t ? atoll(t) : 0;
    if (o->timeout < 0) o->timeout = 0;
    if (o->timeout > MAX_TIMEOUT_MS) o->timeout = MAX_TIMEOUT_MS;
    const char *fs = hs_req_query(r, "full_state");
    const char *usa = hs_req_query(r, "use_state_after");
    o->p.user_id = r->user_id;
    o->p.device_id = r->device_id;
    o->p.full_state = fs && !strcmp(fs, "true");
    o->p.use_state_after = usa && !strcmp(usa, "true");
    o->p.timeline_limit = 10;
    return 0;
}

/* The filter's parts /sync uses, and the user's ignore list. */
static int load_filter(db_conn *c, hs_req *r, sync_opts *o, client_filter **f, json_t **ignored,
                       hs_err *err) {
    *f = client_filter_load(c, r->user_id, hs_req_query(r, "filter"), err);
    if (!*f) return -1;
    o->p.filter = *f;
    o->p.timeline_limit = client_filter_limit(&(*f)->timeline, 10, 1000);
    o->p.lazy_load_members = (*f)->state.lazy_load_members;
    o->p.redundant_members = (*f)->state.include_redundant_members;
    o->p.include_leave = (*f)->include_leave;
    hs_err none = {0};
    json_t *ign = client_account_data_get(c, r->user_id, NULL, "m.ignored_user_list", &none);
    *ignored = ign;
    o->p.ignored = json_object_get(ign, "ignored_users");
    return 0;
}

/* A joined room's entry, created empty when only ephemeral or account data
 * brought it into the response. */
static json_t *join_entry(json_t *join, const char *room_id, long long to) {
    json_t *e = json_object_get(join, room_id);
    if (e) return e;
    char prev[32];
    snprintf(prev, sizeof prev, "t%lld", to);
    e = json_pack("{s:{s:[], s:b, s:s}, s:{s:[]}}", "timeline", "events", "limited", 0,
                  "prev_batch", prev, "state", "events");
    json_object_set_new(join, room_id, e);
    return e;
}

static void append_events(json_t *entry, const char *section, json_t *ev) {
    json_t *sec = json_object_get(entry, section);
    if (!sec) json_object_set_new(entry, section, sec = json_pack("{s:[]}", "events"));
    json_array_append(json_object_get(sec, "events"), ev);
}

static long long from_of(const sync_opts *o, db_stream s) { return o->has_since ? o->since.pos[s] : 0; }

/* Whether stream s has anything since the token: a woken long-poll usually
 * has news on one stream only, and skips the queries of the others. */
static bool moved(const sync_opts *o, const sync_token *now, db_stream s) {
    return !o->has_since || o->since.pos[s] != now->pos[s];
}

/* Ephemeral events, room account data and unread counts of joined rooms. */
static int room_extras(db_conn *c, hs_req *r, sync_opts *o, const sync_token *now, json_t *rooms,
                       char **joined, size_t n, bool *any, hs_err *err) {
    json_t *join = json_object_get(rooms, "join");
    json_t *receipts = json_object(), *radata = json_object();
    int rc = 0;
    if (moved(o, now, DB_STREAM_RECEIPTS))
        rc = client_receipts_sync(c, r->user_id, (const char *const *)joined, n,
                                  from_of(o, DB_STREAM_RECEIPTS), now->pos[DB_STREAM_RECEIPTS],
                                  receipts, err);
    if (rc == 0 && moved(o, now, DB_STREAM_ACCOUNT_DATA))
        rc = client_account_data_sync(c, r->user_id, from_of(o, DB_STREAM_ACCOUNT_DATA),
                                      now->pos[DB_STREAM_ACCOUNT_DATA], NULL, radata, err);
    const client_filter *f = o->p.filter;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (f && !client_filter_room_allowed(&f->room, joined[i])) continue;
        json_t *typing = client_typing_sync(joined[i], from_of(o, DB_STREAM_TYPING),
                                            now->pos[DB_STREAM_TYPING]);
        json_t *rec = json_object_get(receipts, joined[i]);
        json_t *ad = json_object_get(radata, joined[i]);
        if (typing && (!f || client_filter_event_allowed(&f->ephemeral, typing)))
            append_events(join_entry(join, joined[i], o->p.to), "ephemeral", typing), *any = true;
        if (rec && (!f || client_filter_event_allowed(&f->ephemeral, rec)))
            append_events(join_entry(join, joined[i], o->p.to), "ephemeral", rec), *any = true;
        size_t k;
        json_t *ev;
        json_array_foreach(ad, k, ev) {
            if (f && !client_filter_event_allowed(&f->room_account_data, ev)) continue;
            append_events(join_entry(join, joined[i], o->p.to), "account_data", ev);
            *any = true;
        }
        json_decref(typing);
        json_t *entry = json_object_get(join, joined[i]);
        if (!entry) continue;
        /* Synapse gives every joined room in the response both sections,
         * empty or not; Complement (TestACLsForEDUs) reads ephemeral.events
         * of a room that has none. */
        for (int s = 0; s < 2; s++) {
            const char *sec = s ? "account_data" : "ephemeral";
            if (!json_object_get(entry, sec))
                json_object_set_new(entry, sec, json_pack("{s:[]}", "events"));
        }
        json_t *unread = NULL, *threads = NULL;
        bool per_thread = f && f->timeline.unread_thread_notifications;
        rc = client_push_unread(c, r->user_id, joined[i], &unread, per_thread ? &threads : NULL, err);
        if (unread) json_object_set_new(entry, "unread_notifications", unread);
        if (threads) json_object_set_new(entry, "unread_thread_notifications", threads);
    }
    json_decref(receipts);
    json_decref(radata);
    return rc;
}

/* Users a joined room's entry shows joining (its timeline and state hold
 * their join): on an incremental sync, members the user newly shares the
 * room with, or all members of a room the user just joined. Into users
 * (borrowed from entries), at most cap. */
static size_t joined_in(const json_t *joined, const char *me, const char **users, size_t cap) {
    static const char *const sections[] = {"timeline", "state", "state_after"};
    size_t n = 0;
    const char *room;
    json_t *entry;
    json_object_foreach((json_t *)joined, room, entry) {
        for (size_t s = 0; s < sizeof sections / sizeof *sections; s++) {
            size_t i;
            json_t *ev;
            json_array_foreach(json_object_get(json_object_get(entry, sections[s]), "events"), i, ev) {
                const char *type = json_string_value(json_object_get(ev, "type"));
                const char *who = json_string_value(json_object_get(ev, "state_key"));
                const char *m = json_string_value(
                    json_object_get(json_object_get(ev, "content"), "membership"));
                if (n < cap && type && who && m && !strcmp(type, "m.room.member") &&
                    !strcmp(m, "join") && strcmp(who, me) != 0)
                    users[n++] = who;
            }
        }
    }
    return n;
}

/* Global account data (with the push rules) and presence. */
static int user_extras(db_conn *c, hs_req *r, sync_opts *o, const sync_token *now, json_t *resp,
                       bool *any, hs_err *err) {
    json_t *adata = json_array(), *presence = json_array(), *pr = NULL;
    /* Position 0 means "from the start" to the push rules: on an incremental
     * sync they are asked for only when the account data stream moved. */
    bool ad_moved = moved(o, now, DB_STREAM_ACCOUNT_DATA);
    int rc = 0;
    if (ad_moved)
        rc = client_account_data_sync(c, r->user_id, from_of(o, DB_STREAM_ACCOUNT_DATA),
                                      now->pos[DB_STREAM_ACCOUNT_DATA], adata, NULL, err);
    if (rc == 0 && ad_moved)
        rc = client_push_rules_account_data(c, r->user_id, from_of(o, DB_STREAM_ACCOUNT_DATA),
                                            now->pos[DB_STREAM_ACCOUNT_DATA], &pr, err);
    if (pr) json_array_append_new(adata, pr);
    if (rc == 0 && moved(o, now, DB_STREAM_PRESENCE))
        rc = client_presence_sync(c, r->user_id, from_of(o, DB_STREAM_PRESENCE),
                                  now->pos[DB_STREAM_PRESENCE], presence, err);
    /* Members newly met get their presence even if it did not change (as
     * Synapse does): one query, only when joins are in this response. */
    const char *met[256];
    size_t n_met = o->has_since ? joined_in(json_object_get(json_object_get(resp, "rooms"), "join"),
                                            r->user_id, met, 256)
                                : 0;
    if (rc == 0 && n_met) rc = client_presence_of(c, met, n_met, presence, err);
    const client_filter *f = o->p.filter;
    for (size_t i = json_array_size(adata); f && i > 0; i--)
        if (!client_filter_event_allowed(&f->account_data, json_array_get(adata, i - 1)))
            json_array_remove(adata, i - 1);
    for (size_t i = json_array_size(presence); f && i > 0; i--)
        if (!client_filter_event_allowed(&f->presence, json_array_get(presence, i - 1)))
            json_array_remove(presence, i - 1);
    *any |= json_array_size(adata) > 0 || json_array_size(presence) > 0;
    json_object_set_new(resp, "account_data", json_pack("{s:o}", "events", adata));
    json_object_set_new(resp, "presence", json_pack("{s:o}", "events", presence));
    return rc;
}

/* The device's to-device messages, device list changes and key counts.
 * A to-device backlog longer than one response leaves the token's to-device
 * position at the last message sent (*next), so the rest comes next time. */
static int sync_e2ee(db_conn *c, hs_req *r, sync_opts *o, const sync_token *now, json_t *resp,
                     bool *any, long long *next, hs_err *err) {
    json_t *td = json_array(), *changed = json_array(), *left = json_array();
    json_t *counts = NULL, *fallback = NULL;
    /* Always asked: it also deletes what the client acknowledged with since. */
    int rc = client_to_device_sync(c, r->user_id, r->device_id, from_of(o, DB_STREAM_TO_DEVICE),
                                   now->pos[DB_STREAM_TO_DEVICE], td, next, err);
    if (rc == 0 && o->has_since)
        rc = client_device_lists_sync(c, r->user_id, o->since.pos[DB_STREAM_DEVICE_LISTS],
                                      now->pos[DB_STREAM_DEVICE_LISTS], changed, left, err);
    size_t n_new = json_object_size(o->p.newly_full), k = 0;
    if (rc == 0 && n_new) { /* their members were never listed to this client */
        const char **ids = calloc(n_new, sizeof *ids), *id;
        json_t *v;
        json_object_foreach(o->p.newly_full, id, v) ids[k++] = id;
        rc = client_device_lists_rooms_joined(c, r->user_id, ids, k, changed, left, err);
        free(ids);
    }
    if (rc == 0) rc = client_otk_counts(c, r->user_id, r->device_id, &counts, &fallback, err);
    *any |= json_array_size(td) || json_array_size(changed) || json_array_size(left);
    json_object_set_new(resp, "to_device", json_pack("{s:o}", "events", td));
    json_object_set_new(resp, "device_lists", json_pack("{s:o, s:o}", "changed", changed, "left", left));
    json_object_set_new(resp, "device_one_time_keys_count", counts ? counts : json_object());
    json_object_set_new(resp, "device_unused_fallback_key_types", fallback ? fallback : json_array());
    return rc;
}

/* Joined rooms whose entry the filters left empty go, unless shown whole
 * (sync_params.kept): Synapse leaves out a room with nothing to say. */
static void drop_empty_rooms(json_t *join, const json_t *kept) {
    const char *id;
    json_t *entry, *tmp;
    json_object_foreach_safe(join, tmp, id, entry)
        if (!json_object_get(kept, id) && !client_sync_entry_has_events(entry))
            json_object_del(join, id);
}

/* One pass: the response from since to now; *any says whether it has news. */
static json_t *build(hs_req *r, sync_opts *o, const sync_token *now, bool *any, char ***rooms,
                     size_t *n_rooms, hs_err *err) {
    size_t n_shown = 0;
    o->p.since = o->has_since ? o->since.pos[DB_STREAM_EVENTS] : -1;
    o->p.to = now->pos[DB_STREAM_EVENTS];
    json_t *roomsj = json_pack("{s:{}, s:{}, s:{}, s:{}}", "join", "invite", "knock", "leave");
    o->p.newly_full = json_object();
    o->p.kept = json_object();
    json_t *resp = json_pack("{s:O}", "rooms", roomsj);
    sync_token next = *now;
    client_filter *f = NULL;
    json_t *ignored = NULL;
    db_conn *c = db_acquire(r->srv->db, err);
    if (c) { /* independent reads of this pass, in one round trip */
        sync_rooms_prefetch(c, &o->p);
        client_account_data_prefetch(c, r->user_id, NULL, "m.ignored_user_list");
        client_to_device_prefetch(c, r->user_id, r->device_id, from_of(o, DB_STREAM_TO_DEVICE),
                                  now->pos[DB_STREAM_TO_DEVICE]);
        client_otk_counts_prefetch(c, r->user_id, r->device_id);
    }
    int rc = c ? load_filter(c, r, o, &f, &ignored, err) : -1;
    if (rc == 0) rc = sync_rooms(c, &o->p, roomsj, any, rooms, n_rooms, &n_shown, err);
    if (rc == 0) rc = room_extras(c, r, o, now, roomsj, *rooms, n_shown, any, err);
    if (rc == 0) drop_empty_rooms(json_object_get(roomsj, "join"), o->p.kept);
    if (rc == 0) rc = user_extras(c, r, o, now, resp, any, err);
    if (rc == 0) rc = sync_e2ee(c, r, o, now, resp, any, &next.pos[DB_STREAM_TO_DEVICE], err);
    if (rc == 0) client_sync_format(c, f, roomsj); /* last: the passes above read client fields */
    char tok[256];
    sync_token_format(&next, tok, sizeof tok);
    json_object_set_new(resp, "next_batch", json_string(tok));
    db_release(r->srv->db, c);
    client_filter_free(f);
    json_decref(ignored);
    json_decref(roomsj);
    if (rc < 0) json_decref(resp), resp = NULL;
    json_decref(o->p.newly_full);
    json_decref(o->p.kept);
    o->p.filter = NULL, o->p.ignored = NULL, o->p.newly_full = NULL, o->p.kept = NULL;
    return resp;
}

/* What makes two incremental syncs the same request (sync_share.h). */
static char *share_key(hs_req *r) {
    const char *parts[] = {r->user_id, r->device_id ? r->device_id : "",
                           hs_req_query(r, "since"), hs_req_query(r, "filter"),
                           hs_req_query(r, "full_state"), hs_req_query(r, "use_state_after")};
    size_t len = 1;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) len += (parts[i] ? strlen(parts[i]) : 0) + 2;
    char *key = malloc(len), *p = key;
    if (!key) return NULL;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        p += sprintf(p, "%s%c%c", parts[i] ? parts[i] : "", parts[i] ? '=' : '-', 0x1f);
    return key;
}

static void free_rooms(char **rooms, size_t n) {
    for (size_t i = 0; i < n; i++) free(rooms[i]);
    free(rooms);
}

static int get_sync(hs_req *r, json_t **out, hs_err *err) {
    sync_opts o;
    if (parse_opts(r, &o, err) < 0) return -1;
    bool first = !r->ctx;
    long long deadline = sync_wait_begin(r, o.timeout);
    if (first) { /* the request's first run: set_presence says the user is around */
        db_conn *c = db_acquire(r->srv->db, err);
        int rc = c ? client_presence_set(c, r->srv, r->user_id, hs_req_query(r, "set_presence"), err) : -1;
        db_release(r->srv->db, c);
        if (rc < 0) return -1;
    }
    char *key = o.has_since ? share_key(r) : NULL;
    for (;;) {
        sync_token now;
        sync_token_now(&now);
        bool owner = false;
        sync_share *share = key ? sync_share_begin(key, &now, &owner) : NULL;
        if (share && !owner) {
            json_t *shared = sync_share_wait(share);
            if (shared) {
                free(key);
                *out = shared;
                return 200;
            }
            share = NULL; /* nothing to share: look for ourselves */
        }
        bool any = false;
        char **rooms = NULL;
        size_t n = 0;
        json_t *resp = build(r, &o, &now, &any, &rooms, &n, err);
        sync_share_end(share, any ? resp : NULL);
        if (!resp) return free(key), -1;
        bool wait = !any && o.has_since && !o.p.full_state && hs_now_ms() < deadline &&
                    !atomic_load(&r->srv->stopping);
        if (wait && sync_wait_park(r, rooms, n, &now)) {
            json_decref(resp);
            free_rooms(rooms, n);
            free(key);
            return HS_SUSPENDED;
        }
        free_rooms(rooms, n);
        if (!wait) {
            free(key);
            *out = resp;
            return 200;
        }
        json_decref(resp); /* something committed meanwhile: look again */
    }
}

void client_sync_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/sync", get_sync, HS_AUTH | HS_R0 | HS_GUEST);
}
