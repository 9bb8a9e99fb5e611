/* notifier.c — the registry of waiting /sync requests.
 *
 * Waiters sit in a hash table by user ID and in a second one by room ID, so a
 * notification touches only the waiters that can see it, not all of them.
 *
 * A reader is shown a stream position only once every earlier one has
 * committed (streams.h). A notification given while an earlier write is
 * still in flight wakes waiters that find nothing new yet and park again,
 * and the earlier write's own notification is for its users and rooms only:
 * so such a notification is held, with the positions it waits for, and given
 * again once every stream has reached them (as Synapse's notifier waits for
 * the persisted position). Without this a message could wait for the
 * reader's sync time-out. */
#include "notifier.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/db/streams.h"

#define BUCKETS 4096

typedef struct link {
    hs_waiter *w;
    struct link *next;
    char key[]; /* user or room ID */
} link;

struct hs_waiter {
    void (*wake)(void *);
    void *arg;
    bool fired;
    link **links; /* every entry of this waiter in the tables */
    size_t n_links;
};

static link *by_key[BUCKETS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t woken = PTHREAD_COND_INITIALIZER;
static size_t n_waiters, n_waking;

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

/* Users and rooms share one table: their sigils ('@', '!') keep them apart. */
static link *insert(hs_waiter *w, const char *key) {
    size_t n = strlen(key) + 1;
    link *l = malloc(sizeof *l + n);
    l->w = w;
    memcpy(l->key, key, n);
    unsigned b = hash(key);
    l->next = by_key[b];
    by_key[b] = l;
    return l;
}

static void unlink_one(link *l) {
    link **pp = &by_key[hash(l->key)];
    while (*pp && *pp != l) pp = &(*pp)->next;
    if (*pp) *pp = l->next;
    free(l);
}

hs_waiter *hs_waiter_add(const char *user_id, const char *const *room_ids, size_t n_rooms,
                         void (*wake)(void *arg), void *arg) {
    hs_waiter *w = calloc(1, sizeof *w);
    w->wake = wake;
    w->arg = arg;
    w->links = calloc(n_rooms + 1, sizeof *w->links);
    pthread_mutex_lock(&mu);
    w->links[w->n_links++] = insert(w, user_id);
    for (size_t i = 0; i < n_rooms; i++) w->links[w->n_links++] = insert(w, room_ids[i]);
    n_waiters++;
    pthread_mutex_unlock(&mu);
    return w;
}

void hs_waiter_remove(hs_waiter *w) {
    if (!w) return;
    pthread_mutex_lock(&mu);
    while (n_waking > 0) pthread_cond_wait(&woken, &mu);
    for (size_t i = 0; i < w->n_links; i++) unlink_one(w->links[i]);
    n_waiters--;
    pthread_mutex_unlock(&mu);
    free(w->links);
    free(w);
}

/* Fire every waiter under key that has not fired yet. The wake callbacks run
 * with the lock released; hs_waiter_remove waits for them to finish. */
static void fire(const char *key) {
    hs_waiter *batch[64];
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&mu);
        for (link *l = by_key[hash(key)]; l && n < 64; l = l->next)
            if (!l->w->fired && !strcmp(l->key, key)) {
                l->w->fired = true;
                batch[n++] = l->w;
            }
        n_waking += n ? 1 : 0;
        pthread_mutex_unlock(&mu);
        if (n == 0) return;
        for (size_t i = 0; i < n; i++) batch[i]->wake(batch[i]->arg);
        pthread_mutex_lock(&mu);
        n_waking--;
        pthread_cond_broadcast(&woken);
        pthread_mutex_unlock(&mu);
        if (n < 64) return;
    }
}

/* ---- notifications held back ------------------------------------------- */

typedef struct held {
    struct held *next;
    long long upto[DB_STREAM_COUNT]; /* positions to reach first (0: any) */
    char key[];
} held;

static held *held_list; /* one entry a key */
static atomic_size_t n_held;
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;

/* The stream hook: give again the notifications whose positions are shown now. */
static void release_held(void) {
    if (!atomic_load(&n_held)) return;
    held *ready = NULL;
    pthread_mutex_lock(&held_mu);
    for (held **pp = &held_list; *pp;) {
        held *h = *pp;
        if (!db_streams_reached(h->upto)) {
            pp = &h->next;
            continue;
        }
        *pp = h->next;
        h->next = ready;
        ready = h;
        atomic_fetch_sub(&n_held, 1);
    }
    pthread_mutex_unlock(&held_mu);
    while (ready) {
        held *h = ready;
        ready = h->next;
        fire(h->key);
        free(h);
    }
}

static void hold_if_held_back(const char *key) {
    long long upto[DB_STREAM_COUNT];
    if (!db_streams_held_back(upto)) return;
    db_stream_on_advance(release_held);
    pthread_mutex_lock(&held_mu);
    held *h = held_list;
    while (h && strcmp(h->key, key)) h = h->next;
    size_t n = strlen(key) + 1;
    if (!h && (h = calloc(1, sizeof *h + n))) {
        memcpy(h->key, key, n);
        h->next = held_list;
        held_list = h;
        atomic_fetch_add(&n_held, 1);
    }
    for (int s = 0; h && s < DB_STREAM_COUNT; s++)
        if (upto[s] > h->upto[s]) h->upto[s] = upto[s];
    pthread_mutex_unlock(&held_mu);
    release_held(); /* the streams may have caught up meanwhile */
}

static void notify(const char *key) {
    hold_if_held_back(key);
    fire(key);
}

void hs_notify_users(const char *const *user_ids, size_t n) {
    for (size_t i = 0; i < n; i++) notify(user_ids[i]);
}

void hs_notify_room(const char *room_id) { notify(room_id); }

void hs_notify_all(void) {
    for (;;) {
        const char *key = NULL;
        char buf[512];
        pthread_mutex_lock(&mu);
        for (size_t b = 0; b < BUCKETS && !key; b++)
            for (link *l = by_key[b]; l && !key; l = l->next)
                if (!l->w->fired) snprintf(buf, sizeof buf, "%s", l->key), key = buf;
        pthread_mutex_unlock(&mu);
        if (!key) return;
        fire(key);
    }
}

size_t hs_waiters_count(void) {
    pthread_mutex_lock(&mu);
    size_t n = n_waiters;
    pthread_mutex_unlock(&mu);
    return n;
}
