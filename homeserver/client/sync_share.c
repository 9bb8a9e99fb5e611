/* sync_share.c — a small table of builds in flight and answers just made.
 * An answer stays shareable for SHARE_KEEP_MS after it is made, for requests
 * woken a moment later by the same change; after that the next request
 * with the same key builds again (a client that sends the same token again
 * later, after a network error, may get news that came since). */
#include "sync_share.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "homeserver/core/clock.h"

#define SHARE_SLOTS 128
#define SHARE_KEEP_MS 500
#define SHARE_WAIT_MS 10000

struct sync_share {
    char *key;            /* NULL: free slot */
    bool done;
    json_t *answer;       /* when done: the owner's answer with news, or NULL */
    long long done_ms;
    int users;            /* owner and waiters still holding the slot */
};

static struct sync_share slots[SHARE_SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void release(sync_share *s) {
    if (--s->users > 0) return;
    /* Nobody holds it; a done answer stays until it is too old to share. */
    if (!s->done || !s->answer || hs_now_ms() - s->done_ms >= SHARE_KEEP_MS) {
        free(s->key);
        json_decref(s->answer);
        memset(s, 0, sizeof *s);
    }
}

static bool stale(const sync_share *s, long long now) {
    return s->key && s->users == 0 && s->done && now - s->done_ms >= SHARE_KEEP_MS;
}

sync_share *sync_share_begin(const char *key, bool *owner) {
    long long now = hs_now_ms();
    sync_share *s = NULL, *free_slot = NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SHARE_SLOTS; i++) {
        sync_share *x = &slots[i];
        if (stale(x, now)) {
            free(x->key);
            json_decref(x->answer);
            memset(x, 0, sizeof *x);
        }
        if (!x->key) {
            if (!free_slot) free_slot = x;
        } else if (!strcmp(x->key, key) && (!x->done || x->answer)) {
            s = x;
        }
    }
    *owner = false;
    if (!s && free_slot && (free_slot->key = strdup(key))) {
        s = free_slot;
        *owner = true;
    }
    if (s) s->users++;
    pthread_mutex_unlock(&mu);
    return s;
}

void sync_share_end(sync_share *s, const json_t *resp) {
    if (!s) return;
    json_t *copy = resp ? json_deep_copy(resp) : NULL;
    pthread_mutex_lock(&mu);
    s->done = true;
    s->answer = copy;
    s->done_ms = hs_now_ms();
    release(s);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

json_t *sync_share_wait(sync_share *s) {
    if (!s) return NULL;
    long long until = hs_now_ms() + SHARE_WAIT_MS;
    struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
    pthread_mutex_lock(&mu);
    while (!s->done && pthread_cond_timedwait(&cv, &mu, &ts) == 0) {
    }
    json_t *out = s->done && s->answer ? json_deep_copy(s->answer) : NULL;
    release(s);
    pthread_mutex_unlock(&mu);
    return out;
}
