/* group_commit.c — batches of queued requests, written by the queue's own
 * writer threads. */
#include "group_commit.h"

#include <stdlib.h>
#include <string.h>

#include "homeserver/core/log.h"

static bool busy(const gc_queue *q, const char *key) {
    for (size_t i = 0; i < q->n_busy; i++)
        if (!strcmp(q->busy[i], key)) return true;
    return false;
}

static void unbusy(gc_queue *q, const char *key) {
    for (size_t i = 0; i < q->n_busy; i++)
        if (!strcmp(q->busy[i], key)) {
            key = q->busy[i];
            q->busy[i] = q->busy[--q->n_busy];
            free((char *)key);
            return;
        }
}

/* The queued items whose keys are free, oldest first, one per key, up to
 * GC_MAX_BATCH; their keys become busy (copies in keys[], since the items
 * may be gone once the batch function completed them). Called locked. */
static size_t take(gc_queue *q, void **args, char **keys) {
    size_t n = 0;
    for (gc_item *it = q->head, *prev = NULL, *next; it && n < GC_MAX_BATCH; it = next) {
        next = it->next;
        char *copy = busy(q, it->key) ? NULL : strdup(it->key);
        if (!copy) { /* busy (or out of memory): it waits for a later batch */
            prev = it;
            continue;
        }
        if (prev) prev->next = next;
        else q->head = next;
        if (q->tail == it) q->tail = prev;
        q->queued--;
        args[n] = it->arg;
        keys[n++] = q->busy[q->n_busy++] = copy;
    }
    return n;
}

/* A batch of keys[0..n) is written. Called locked. */
static void finished(gc_queue *q, char *const *keys, size_t n) {
    q->running--;
    for (size_t i = 0; i < n; i++) unbusy(q, keys[i]);
    /* What waited, for a busy key or for company, may go now. */
    if (q->head) pthread_cond_broadcast(&q->cv);
}

static void *writer(void *arg) {
    gc_queue *q = arg;
    void *args[GC_MAX_BATCH];
    char *keys[GC_MAX_BATCH];
    pthread_mutex_lock(&q->mu);
    for (;;) {
        size_t n = q->running == 0 || q->queued >= GC_COMPANY ? take(q, args, keys) : 0;
        if (n == 0) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        q->running++;
        pthread_mutex_unlock(&q->mu);
        q->fn(args, n);
        pthread_mutex_lock(&q->mu);
        finished(q, keys, n);
    }
    return NULL;
}

/* Called locked. The writers are detached: they live as long as the
 * process, asleep on the queue when there is nothing to write. */
static int start_writers(gc_queue *q) {
    while (q->writers < GC_WRITERS) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, writer, q);
        pthread_attr_destroy(&a);
        if (rc != 0) {
            hs_warn("group commit: cannot start a writer thread: %s", strerror(rc));
            break;
        }
        q->writers++;
    }
    return q->writers > 0 ? 0 : -1;
}

int gc_start(gc_queue *q) {
    pthread_mutex_lock(&q->mu);
    int rc = start_writers(q);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

void gc_enqueue(gc_queue *q, gc_item *it) {
    it->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    q->queued++;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

bool gc_claim(gc_queue *q, const char *key) {
    pthread_mutex_lock(&q->mu);
    char *copy = q->running == 0 && !q->head ? strdup(key) : NULL;
    if (copy) {
        q->running++;
        q->busy[q->n_busy++] = copy;
    }
    pthread_mutex_unlock(&q->mu);
    return copy != NULL;
}

void gc_release(gc_queue *q, const char *key) {
    pthread_mutex_lock(&q->mu);
    finished(q, (char *const[]){(char *)key}, 1);
    pthread_mutex_unlock(&q->mu);
}
