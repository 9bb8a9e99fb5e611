/* sync_wait.c — parking a long-poll until the notifier or its timeout wakes it.
 *
 * The wait state is shared by the request, the timer and the notifier, so it
 * is reference-counted; disarm() guarantees neither can touch it afterwards. */
#include "sync_wait.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "homeserver/core/clock.h"
#include "homeserver/http/timer.h"
#include "notifier.h"

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

long long sync_wait_begin(hs_req *r, long long timeout_ms) {
    sync_wait *w = r->ctx;
    if (w) {
        disarm(w); /* resumed */
        return w->deadline;
    }
    if (timeout_ms <= 0) return 0;
    w = calloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    atomic_init(&w->refs, 1);
    w->r = r;
    w->deadline = hs_now_ms() + timeout_ms;
    r->ctx = w;
    r->ctx_free = wait_free;
    return w->deadline;
}

/* Register with the notifier and the timer, then park unless something fired. */
bool sync_wait_park(hs_req *r, char **rooms, size_t n, const sync_token *seen) {
    sync_wait *w = r->ctx;
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

