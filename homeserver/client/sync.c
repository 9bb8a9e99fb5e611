/* sync.c — GET /sync: initial and incremental, long-polling without a thread.
 *
 * With nothing new and a timeout, the request parks (hs_req_suspend) after
 * registering with the notifier for the user and their rooms, and with the
 * timer for the timeout; whichever fires first resumes it and the handler
 * runs again. A wake for something this filter hides parks it again until
 * the deadline. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "homeserver/http/timer.h"
#include "notifier.h"
#include "sync_rooms.h"
#include "sync_token.h"

#define MAX_TIMEOUT_MS (10LL * 60 * 1000)

typedef struct sync_wait {
    pthread_mutex_t mu;
    atomic_int refs;       /* the request, the timer, the waiter registration */
    hs_req *r;
    hs_waiter *waiter;
    hs_timer *timer;
    bool parked, fired;
    long long deadline;
} sync_wait;

static void wait_unref(sync_wait *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1) {
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

/* From the notifier or the timer: resume the request if it is parked. */
static void wake(sync_wait *w) {
    pthread_mutex_lock(&w->mu);
    w->fired = true;
    if (w->parked) {
        w->parked = false;
        hs_req_resume(w->r);
    }
    pthread_mutex_unlock(&w->mu);
}

static void on_notify(void *arg) { wake(arg); }

static void on_timeout(void *arg) {
    wake(arg);
    wait_unref(arg); /* the timer's reference */
}

/* Stop listening: after this neither the notifier nor the timer can touch w. */
static void disarm(sync_wait *w) {
    hs_waiter_remove(w->waiter);
    w->waiter = NULL;
    if (w->timer && hs_timer_cancel(w->timer)) wait_unref(w); /* it will never run */
    w->timer = NULL;
}

static void wait_free(void *arg) {
    sync_wait *w = arg;
    disarm(w);
    wait_unref(w);
}

typedef struct sync_opts {
    sync_token since;
    bool has_since;
    long long timeout;
    sync_params p;
} sync_opts;

/* Read the filter's parts /sync uses from an inline JSON filter. */
static void apply_filter(const char *filter, sync_params *p) {
    if (!filter || filter[0] != '{') return;
    json_error_t je;
    json_t *f = json_loads(filter, 0, &je);
    json_t *room = json_object_get(f, "room");
    json_t *limit = json_object_get(json_object_get(room, "timeline"), "limit");
    if (json_is_integer(limit) && json_integer_value(limit) >= 0)
        p->timeline_limit = (int)(json_integer_value(limit) > 1000 ? 1000 : json_integer_value(limit));
    p->lazy_load_members =
        json_is_true(json_object_get(json_object_get(room, "state"), "lazy_load_members"));
    p->include_leave = json_is_true(json_object_get(room, "include_leave"));
    json_decref(f);
}

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
    apply_filter(hs_req_query(r, "filter"), &o->p);
    return 0;
}

/* One pass: the response from since to now; *any says whether it has news. */
static json_t *build(hs_req *r, sync_opts *o, const sync_token *now, bool *any, char ***rooms,
                     size_t *n_rooms, hs_err *err) {
    o->p.since = o->has_since ? o->since.pos[DB_STREAM_EVENTS] : -1;
    o->p.to = now->pos[DB_STREAM_EVENTS];
    json_t *roomsj = json_pack("{s:{}, s:{}, s:{}, s:{}}", "join", "invite", "knock", "leave");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c || sync_rooms(c, &o->p, roomsj, any, rooms, n_rooms, err) < 0) {
        db_release(r->srv->db, c);
        json_decref(roomsj);
        return NULL;
    }
    db_release(r->srv->db, c);
    char tok[256];
    sync_token_format(now, tok, sizeof tok);
    return json_pack("{s:s, s:o, s:{s:[]}, s:{s:[]}, s:{s:[]}, s:{s:[], s:[]}, s:{}, s:[]}",
                     "next_batch", tok, "rooms", roomsj, "account_data", "events", "presence",
                     "events", "to_device", "events", "device_lists", "changed", "left",
                     "device_one_time_keys_count", "device_unused_fallback_key_types");
}

static void free_rooms(char **rooms, size_t n) {
    for (size_t i = 0; i < n; i++) free(rooms[i]);
    free(rooms);
}

/* Register with the notifier and the timer, then park unless something fired. */
static bool park(hs_req *r, sync_wait *w, char **rooms, size_t n, const sync_token *seen) {
    w->fired = false;
    w->waiter = hs_waiter_add(r->user_id, (const char *const *)rooms, n, on_notify, w);
    atomic_fetch_add(&w->refs, 1);
    w->timer = hs_timer_add(w->deadline, on_timeout, w);
    sync_token again;
    sync_token_now(&again); /* a write that committed before we registered */
    pthread_mutex_lock(&w->mu);
    bool park = !w->fired && sync_token_equal(&again, seen);
    if (park) {
        w->parked = true;
        hs_req_suspend(r);
    }
    pthread_mutex_unlock(&w->mu);
    if (!park) disarm(w);
    return park;
}

static int get_sync(hs_req *r, json_t **out, hs_err *err) {
    sync_wait *w = r->ctx;
    if (w) disarm(w); /* resumed */
    sync_opts o;
    if (parse_opts(r, &o, err) < 0) return -1;
    for (;;) {
        sync_token now;
        sync_token_now(&now);
        bool any = false;
        char **rooms = NULL;
        size_t n = 0;
        json_t *resp = build(r, &o, &now, &any, &rooms, &n, err);
        if (!resp) return -1;
        long long t = hs_now_ms();
        if (!w && o.timeout > 0) {
            w = calloc(1, sizeof *w);
            pthread_mutex_init(&w->mu, NULL);
            atomic_init(&w->refs, 1);
            w->r = r;
            w->deadline = t + o.timeout;
            r->ctx = w;
            r->ctx_free = wait_free;
        }
        bool wait = !any && o.has_since && !o.p.full_state && w && t < w->deadline &&
                    !atomic_load(&r->srv->stopping) &&
                    sync_token_equal(&now, &o.since);
        if (wait && park(r, w, rooms, n, &now)) {
            json_decref(resp);
            free_rooms(rooms, n);
            return HS_SUSPENDED;
        }
        free_rooms(rooms, n);
        if (!wait) {
            *out = resp;
            return 200;
        }
        json_decref(resp); /* something committed meanwhile: look again */
    }
}

void client_sync_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/sync", get_sync, HS_AUTH | HS_R0);
}
