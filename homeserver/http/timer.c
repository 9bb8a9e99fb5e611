/* timer.c — a sorted list of deadlines served by one lazily started thread.
 * A few thousand pending timers at most (one per waiting request); inserts
 * walk the list, which stays cheap at that size. */
#include "timer.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "homeserver/core/clock.h"

struct hs_timer {
    long long deadline;
    void (*cb)(void *);
    void *arg;
    hs_timer *next;
    bool fired, running, cancelled;
};

static hs_timer *head;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_once_t started = PTHREAD_ONCE_INIT;

static void *loop(void *unused) {
    (void)unused;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!head) pthread_cond_wait(&cv, &mu);
        long long now = hs_now_ms();
        if (head->deadline > now) {
            struct timespec ts = {(time_t)(head->deadline / 1000), (long)(head->deadline % 1000) * 1000000};
            pthread_cond_timedwait(&cv, &mu, &ts);
            continue;
        }
        hs_timer *t = head;
        head = t->next;
        t->fired = t->running = true;
        pthread_mutex_unlock(&mu);
        t->cb(t->arg);
        pthread_mutex_lock(&mu);
        t->running = false;
        /* A cancel that came while cb ran left freeing to us. */
        if (t->cancelled) free(t);
    }
    return NULL;
}

static void start(void) {
    pthread_t th;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, 256 * 1024);
    pthread_create(&th, &a, loop, NULL);
    pthread_attr_destroy(&a);
}

hs_timer *hs_timer_add(long long deadline_ms, void (*cb)(void *arg), void *arg) {
    pthread_once(&started, start);
    hs_timer *t = calloc(1, sizeof *t);
    t->deadline = deadline_ms;
    t->cb = cb;
    t->arg = arg;
    pthread_mutex_lock(&mu);
    hs_timer **pp = &head;
    while (*pp && (*pp)->deadline <= deadline_ms) pp = &(*pp)->next;
    t->next = *pp;
    *pp = t;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return t;
}

bool hs_timer_cancel(hs_timer *t) {
    if (!t) return false;
    pthread_mutex_lock(&mu);
    if (t->fired) {
        /* Running: the loop frees it after; already ran: free it now. */
        bool running = t->running;
        t->cancelled = true;
        pthread_mutex_unlock(&mu);
        if (!running) free(t);
        return false;
    }
    hs_timer **pp = &head;
    while (*pp && *pp != t) pp = &(*pp)->next;
    if (*pp) *pp = t->next;
    pthread_mutex_unlock(&mu);
    free(t);
    return true;
}
