/* sliding_conn.c — what each sliding sync connection has been sent.
 *
 * A connection is (user, device, conn_id). For each room it has been sent
 * it remembers the events position the room is up to date with, the
 * required_state and timeline_limit it was sent with, and the members sent
 * lazily; the next request on that connection sends only what is new.
 *
 * The memory is kept per `pos` handed out, for the latest and the one
 * before: a client whose response was lost retries with the previous pos
 * and gets the same answer again rather than a gap (Synapse keys its
 * sliding_sync_connection_positions the same way). Any other pos, or any
 * pos after a restart, is unknown: 400 M_UNKNOWN_POS, and the client starts
 * over without one, as MSC4186 provides. The store lives in this process's
 * memory, bounded by MAX_CONNS (least recently used connection evicted). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "sliding_sync.h"

#define MAX_CONNS 4096

typedef struct conn {
    char *key;          /* user \x1f device \x1f conn_id */
    char *pos[2];       /* [0] the latest pos handed out, [1] the one before */
    json_t *rooms[2];   /* the room records as of each */
    long long used;
} conn;

static conn conns[MAX_CONNS];
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;

static void conn_clear(conn *c) {
    for (int i = 0; i < 2; i++) {
        free(c->pos[i]), c->pos[i] = NULL;
        json_decref(c->rooms[i]), c->rooms[i] = NULL;
    }
}

static conn *conn_find(const char *key, bool create) {
    conn *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_CONNS; i++) {
        if (conns[i].key && !strcmp(conns[i].key, key)) return &conns[i];
        if (!conns[i].key && !free_slot) free_slot = &conns[i];
        if (conns[i].key && (!oldest || conns[i].used < oldest->used)) oldest = &conns[i];
    }
    if (!create) return NULL;
    conn *c = free_slot ? free_slot : oldest; /* evict the least recently used */
    conn_clear(c);
    free(c->key);
    c->key = strdup(key);
    return c;
}

static bool same(const char *a, const char *b) { return a && b && !strcmp(a, b); }

json_t *ss_conn_begin(const char *key, const char *pos) {
    json_t *rooms = NULL;
    pthread_mutex_lock(&conns_mu);
    conn *c = conn_find(key, !pos);
    if (c && !pos) {
        conn_clear(c);
        rooms = json_object();
    } else if (c) {
        for (int i = 0; i < 2 && !rooms; i++)
            if (same(c->pos[i], pos)) rooms = json_deep_copy(c->rooms[i]);
    }
    if (c) c->used = hs_now_ms();
    pthread_mutex_unlock(&conns_mu);
    return rooms;
}

void ss_conn_commit(const char *key, const char *pos_in, const char *pos_out, json_t *rooms) {
    pthread_mutex_lock(&conns_mu);
    conn *c = conn_find(key, true);
    /* A retry on the previous pos replaces the answer it got before; a
     * request on the latest pos moves the window on. */
    if (!(pos_in && same(c->pos[1], pos_in) && !same(c->pos[0], pos_in))) {
        free(c->pos[1]), json_decref(c->rooms[1]);
        c->pos[1] = c->pos[0], c->rooms[1] = c->rooms[0];
    } else {
        free(c->pos[0]), json_decref(c->rooms[0]);
    }
    c->pos[0] = strdup(pos_out);
    c->rooms[0] = rooms;
    c->used = hs_now_ms();
    pthread_mutex_unlock(&conns_mu);
}
