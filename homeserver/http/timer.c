/* timer.c — a sorted doubly linked list of deadlines served by one lazily
 * started thread. Each waiting request holds one timer (10,000 or more under
 * load) and most requests use the same timeout, so a new deadline almost always
 * belongs at the tail: inserts walk backwards from the tail, cancels unlink in
 * O(1), and the thread is signalled only when the earliest deadline changes. */
#include "timer.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "homeserver/core/clock.h"

struct hs_timer {
    long long deadline;
    void (*cb)(void *);
    void *arg;
    hs_timer *prev, *next;
    bool fired, running, cancelled;
};

static hs_timer *head, *tail;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pthread_once_t started = PTHREAD_ONCE_INIT;

static void unlink_timer(hs_timer *t) {
    if (t->prev) t->prev->next = t->next;
    else head = t->next;
    if (t->next) t->next->prev = t->prev;
    else tail = t->prev;
    t->prev = t->next = NULL;
}

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
        unlink_timer(t);
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
    if (!t) abort();
    t->deadline = deadline_ms;
    t->cb = cb;
    t->arg = arg;
    pthread_mutex_lock(&mu);
    /* After the last timer due no later than this one (equal deadlines fire in
     * the order they were added). */
    hs_timer *after = tail;
    while (after && after->deadline > deadline_ms) after = after->prev;
    t->prev = after;
    t->next = after ? after->next : head;
    if (t->next) t->next->prev = t;
    else tail = t;
    if (after) after->next = t;
    else head = t;
    if (head == t) pthread_cond_signal(&cv);
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
    /* Removing the head only makes the thread's wait end later than needed:
     * it wakes, finds the new head not due and waits again — no signal. */
    unlink_timer(t);
    pthread_mutex_unlock(&mu);
    free(t);
    return true;
}
