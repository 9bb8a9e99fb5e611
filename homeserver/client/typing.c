/* typing.c — typing notifications in memory, their time-outs and
 * PUT /rooms/{roomId}/typing/{userId}.
 *
 * Rooms are kept in a small hash table under one mutex: each has who types
 * until when, and the typing stream position of its last change. Rooms stay
 * once seen (a room is a few dozen bytes) so a /sync that was away still
 * learns that someone stopped. One timer thread, started on first use,
 * sleeps until the earliest time-out; a local user's time-out is sent to
 * the room's other servers as "stopped typing". */
#include "typing.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "fed_outbound.h"
#include "homeserver/core/clock.h"
#include "homeserver/db/streams.h"
#include "notifier.h"
#include "presence.h"
#include "room_access.h"

#define N_BUCKETS 1024
#define DEFAULT_TIMEOUT_MS 30000

typedef struct typer {
    char *user_id;
    long long until;
    hs_server *srv; /* a local user's: other servers hear when it times out */
} typer;

typedef struct troom {
    struct troom *next;
    char *room_id;
    long long last_change;
    typer *t;
    size_t n, cap;
} troom;

static troom *buckets[N_BUCKETS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

static size_t bucket_of(const char *s) {
    size_t h = 5381;
    for (; *s; s++) h = h * 33 + (unsigned char)*s;
    return h % N_BUCKETS;
}

static troom *find_room(const char *room_id, bool create) {
    troom **b = &buckets[bucket_of(room_id)];
    for (troom *r = *b; r; r = r->next)
        if (!strcmp(r->room_id, room_id)) return r;
    if (!create) return NULL;
    troom *r = calloc(1, sizeof *r);
    r->room_id = strdup(room_id);
    r->next = *b;
    *b = r;
    return r;
}

static void remove_typer(troom *r, size_t i) {
    free(r->t[i].user_id);
    r->t[i] = r->t[--r->n];
}

/* A local user's typing that timed out: told to other servers after mu. */
typedef struct stopped {
    char *room_id, *user_id;
    hs_server *srv;
} stopped;

/* Under mu: the room changed; it gets a fresh position. Done at once, since
 * nothing is committed anywhere (db_stream_reserve needs no connection for
 * an in-memory stream). */
static void changed(troom *r) {
    long long pos = db_stream_reserve(NULL, DB_STREAM_TYPING, NULL);
    r->last_change = pos;
    db_stream_done(DB_STREAM_TYPING, pos);
}

/* ---- the timer ---- */

static long long earliest_until(void) {
    long long min = 0;
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (troom *r = buckets[b]; r; r = r->next)
            for (size_t i = 0; i < r->n; i++)
                if (!min || r->t[i].until < min) min = r->t[i].until;
    return min;
}

/* Under mu: drop every expired typer; the rooms that changed go to *woke,
 * local users who stopped to *stop. */
static void expire(long long now, char ***woke, size_t *n, stopped **stop, size_t *n_stop) {
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (troom *r = buckets[b]; r; r = r->next) {
            bool any = false;
            for (size_t i = r->n; i-- > 0;) {
                if (r->t[i].until > now) continue;
                stopped *more = r->t[i].srv ? realloc(*stop, (*n_stop + 1) * sizeof **stop) : NULL;
                if (more) {
                    *stop = more;
                    (*stop)[(*n_stop)++] = (stopped){strdup(r->room_id),
                                                     strdup(r->t[i].user_id), r->t[i].srv};
                }
                remove_typer(r, i), any = true;
            }
            if (!any) continue;
            changed(r);
            *woke = realloc(*woke, (*n + 1) * sizeof **woke);
            (*woke)[(*n)++] = strdup(r->room_id);
        }
}

static void *timer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        long long next = earliest_until(), now = hs_now_ms();
        if (!next) {
            pthread_cond_wait(&cv, &mu);
            continue;
        }
        if (next > now) {
            struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
            pthread_cond_timedwait(&cv, &mu, &ts); /* CLOCK_REALTIME, like hs_now_ms */
            continue;
        }
        char **woke = NULL;
        size_t n = 0, n_stop = 0;
        stopped *stop = NULL;
        expire(now, &woke, &n, &stop, &n_stop);
        pthread_mutex_unlock(&mu);
        for (size_t i = 0; i < n; i++) {
            hs_notify_room(woke[i]);
            free(woke[i]);
        }
        free(woke);
        /* A typing notification that times out ends for other servers too
         * (Synapse's _stopped_typing): theirs would only time out later. */
        for (size_t i = 0; i < n_stop; i++) {
            client_fed_typing(stop[i].srv, stop[i].room_id, stop[i].user_id, false);
            free(stop[i].room_id), free(stop[i].user_id);
        }
        free(stop);
        pthread_mutex_lock(&mu);
    }
    return NULL;
}

static void start_timer(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, timer_main, NULL) == 0) pthread_detach(t);
}

/* ---- setting and reading ---- */

/* Under mu: apply the change; true when readers see a difference. */
static bool apply(troom *r, const char *user_id, bool typing, long long until, hs_server *srv) {
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->t[i].user_id, user_id) != 0) continue;
        if (typing) {
            r->t[i].until = until, r->t[i].srv = srv;
            return false;
        }
        remove_typer(r, i);
        return true;
    }
    if (!typing) return false;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4;
        r->t = realloc(r->t, r->cap * sizeof *r->t);
    }
    r->t[r->n++] = (typer){strdup(user_id), until, srv};
    return true;
}

/* srv: a local user, whose time-out other servers must hear of. */
static void set_typing(const char *room_id, const char *user_id, bool typing, long long timeout_ms,
                       hs_server *srv) {
    pthread_once(&timer_once, start_timer);
    if (timeout_ms > CLIENT_TYPING_MAX_TIMEOUT_MS) timeout_ms = CLIENT_TYPING_MAX_TIMEOUT_MS;
    if (timeout_ms < 0) timeout_ms = 0;
    pthread_mutex_lock(&mu);
    troom *r = find_room(room_id, typing);
    bool news = r && apply(r, user_id, typing, hs_now_ms() + timeout_ms, srv);
    if (news) changed(r);
    pthread_cond_signal(&cv); /* the earliest time-out may have moved */
    pthread_mutex_unlock(&mu);
    if (news) hs_notify_room(room_id);
}

void client_typing_set(const char *room_id, const char *user_id, bool typing,
                       long long timeout_ms) {
    set_typing(room_id, user_id, typing, timeout_ms, NULL);
}

json_t *client_typing_sync(const char *room_id, long long from, long long to) {
    json_t *ev = NULL;
    long long now = hs_now_ms();
    pthread_mutex_lock(&mu);
    troom *r = find_room(room_id, false);
    if (r && r->last_change > from && r->last_change <= to) {
        json_t *ids = json_array();
        for (size_t i = 0; i < r->n; i++)
            if (r->t[i].until > now) json_array_append_new(ids, json_string(r->t[i].user_id));
        ev = json_pack("{s:s, s:{s:o}}", "type", "m.typing", "content", "user_ids", ids);
    }
    pthread_mutex_unlock(&mu);
    return ev;
}

/* ---- the endpoint ---- */

static int put_typing(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0];
    if (strcmp(r->params[1], r->user_id) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN", "Cannot set another user's typing state");
    const json_t *typing = json_object_get(r->json, "typing");
    const json_t *timeout = json_object_get(r->json, "timeout");
    if (!json_is_boolean(typing)) return hs_err_set(err, 400, "M_BAD_JSON", "'typing' must be a boolean");
    if (json_is_true(typing) && timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 0))
        return hs_err_set(err, 400, "M_BAD_JSON", "'timeout' must be a non-negative integer");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = client_require_joined(c, room_id, r->user_id, err);
    /* Typing is activity, as in Synapse; a presence hiccup doesn't fail it. */
    hs_err ignored = {0};
    if (rc == 0 && json_is_true(typing))
        client_presence_bump_active(c, r->srv, r->user_id, &ignored);
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    set_typing(room_id, r->user_id, json_is_true(typing),
               timeout ? json_integer_value(timeout) : DEFAULT_TIMEOUT_MS, r->srv);
    client_fed_typing(r->srv, room_id, r->user_id, json_is_true(typing)); /* other servers */
    *out = json_object();
    return 200;
}

void client_typing_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/client/v3/rooms/{roomId}/typing/{userId}", put_typing,
             HS_AUTH | HS_R0);
}
