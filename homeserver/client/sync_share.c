/* sync_share.c — a small table of the builds in flight. A request joins a
 * build only while it runs: one that comes after it finished builds anew,
 * so a client that acts and then syncs again with the same token sees what
 * it did. */
#include "sync_share.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "homeserver/core/clock.h"

#define SHARE_SLOTS 128
#define SHARE_WAIT_MS 10000

struct sync_share {
    char *key;      /* NULL: free slot */
    bool done;
    json_t *answer; /* when done: the owner's answer with news, or NULL */
    int users;      /* owner and waiters still holding the slot */
};

static struct sync_share slots[SHARE_SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void release(sync_share *s) {
    if (--s->users > 0) return;
    free(s->key);
    json_decref(s->answer);
    memset(s, 0, sizeof *s);
}

sync_share *sync_share_begin(const char *key, bool *owner) {
    sync_share *s = NULL, *free_slot = NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SHARE_SLOTS && !s; i++) {
        sync_share *x = &slots[i];
        if (!x->key) {
            if (!free_slot) free_slot = x;
        } else if (!x->done && !strcmp(x->key, key)) {
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
