/* sync_share.c — a small table of the builds in flight, and of their
 * answers for KEEP_MS after, each reused only at the token it was built at
 * (a client that acted and syncs again with the same since has moved the
 * token, so it builds anew and sees what it did). */
#include "sync_share.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "homeserver/core/clock.h"

#define SHARE_SLOTS 128
#define SHARE_WAIT_MS 10000
#define KEEP_MS 2000

struct sync_share {
    char *key;      /* NULL: free slot */
    sync_token at;  /* the server's token the answer is built at */
    bool done;
    json_t *answer; /* when done: the owner's answer with news, or NULL */
    long long kept_until; /* when done with an answer: reusable until then */
    int users;      /* owner and waiters still holding the slot, and 1 while kept */
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

/* A kept answer past its time, or at a token the server has left behind. */
static void drop_stale(sync_share *x, long long now_ms, const sync_token *now) {
    if (!x->key || !x->done || !x->kept_until) return;
    if (now_ms < x->kept_until && sync_token_equal(&x->at, now)) return;
    x->kept_until = 0;
    release(x);
}

sync_share *sync_share_begin(const char *key, const sync_token *now, bool *owner) {
    sync_share *s = NULL, *free_slot = NULL;
    long long now_ms = hs_now_ms();
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SHARE_SLOTS && !s; i++) {
        sync_share *x = &slots[i];
        drop_stale(x, now_ms, now);
        if (!x->key) {
            if (!free_slot) free_slot = x;
        } else if (!strcmp(x->key, key) && sync_token_equal(&x->at, now) &&
                   (!x->done || x->kept_until)) {
            s = x; /* in flight, or kept at this very token */
        }
    }
    *owner = false;
    if (!s && free_slot && (free_slot->key = strdup(key))) {
        s = free_slot;
        s->at = *now;
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
    if (copy) { /* kept a little, holding the slot itself */
        s->kept_until = hs_now_ms() + KEEP_MS;
        s->users++;
    }
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
