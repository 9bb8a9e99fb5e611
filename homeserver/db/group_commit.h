/* group_commit.h — group commit: requests that arrive while others are being
 * written are written together, one transaction and one statement of each
 * kind for several requests, by a writer thread of the queue's own. No
 * request thread waits: the caller queues its item and goes on (an HTTP
 * request parks, hs_req_suspend), and the batch function completes each item
 * (wakes its request) once the batch is written.
 *
 *     static gc_queue sends = GC_QUEUE_INIT(write_batch);
 *     it->key = room_id, it->arg = job;
 *     gc_enqueue(&sends, it);   // write_batch(args, n) runs on a writer
 *
 * A batch holds at most one item per key (a room ID) and no two running
 * batches share a key, so a batch never waits on another's row locks; an
 * item whose key is busy waits for the next batch, in arrival order. An
 * idle queue starts a batch at once (no waiting for company); under load a
 * batch is whatever arrived while the writers were busy. */
#ifndef DB_GROUP_COMMIT_H
#define DB_GROUP_COMMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define GC_MAX_BATCH 64
/* Two writers, so one batch's round trips and commit overlap another's
 * work; the second starts only with GC_COMPANY items waiting, so that under
 * load batches grow rather than split (on 2 cores, 20 senders: batches of
 * about 6, where two eager writers made them 3 and one writer left a core
 * idle while it waited on its round trips). */
#define GC_WRITERS 2
#define GC_COMPANY 4

typedef struct gc_item {
    const char *key;
    void *arg;
    /* private */
    struct gc_item *next;
} gc_item;

/* Write the batch: args[0..n) are the items' args, oldest first. It must
 * complete every item; after it returns the queue touches none of them.
 * Called on a writer thread, without any lock held. */
typedef void (*gc_batch_fn)(void **args, size_t n);

typedef struct gc_queue {
    gc_batch_fn fn;
    /* private */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int writers; /* started */
    gc_item *head, *tail; /* waiting, in arrival order */
    /* Keys of the running batches (copies): each writer's, and one send
     * written by its own thread (gc_claim). */
    char *busy[GC_WRITERS * GC_MAX_BATCH + 1];
    size_t n_busy;
    size_t queued;  /* items waiting */
    int running;    /* batches being written */
} gc_queue;
#define GC_QUEUE_INIT(f) \
    {.fn = (f), .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER}

/* On an idle queue (nothing waiting or being written) the caller may write
 * its item itself, at once, and save the hand-over to a writer thread and
 * back (two wake-ups, a quarter of a millisecond on an idle machine): true,
 * and the queue counts it as a running batch of key until gc_release. */
bool gc_claim(gc_queue *q, const char *key);
void gc_release(gc_queue *q, const char *key);

/* Start the writers (once): 0, or -1 when none could be started (then
 * the caller writes its item itself). */
int gc_start(gc_queue *q);

/* Queue it, after gc_start (it, its key and its arg must live until fn
 * completes it). */
void gc_enqueue(gc_queue *q, gc_item *it);

#endif
