/* auth_cache.c — a fixed table of recently accepted access tokens.
 *
 * Token hashes are uniformly random, so their first bytes index the table
 * directly; a collision just replaces the older entry. Forgetting everything
 * is a generation bump, so it costs nothing however large the table. */
#include "auth_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"

#define SLOTS 2048 /* ~1.2 MiB at most, its pages touched only as tokens are used */

typedef struct slot {
    unsigned char hash[32];
    unsigned long gen; /* 0: empty */
    long long cached_at;
    hs_auth_entry e;
} slot;

static slot *table;
static unsigned long generation = 1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static size_t index_of(const unsigned char hash[32]) {
    return ((size_t)hash[0] | (size_t)hash[1] << 8) % SLOTS;
}

bool hs_auth_cache_get(const unsigned char hash[32], hs_auth_entry *out) {
    long long now = hs_now_ms();
    bool hit = false;
    pthread_mutex_lock(&mu);
    if (table) {
        const slot *s = &table[index_of(hash)];
        if (s->gen == generation && now - s->cached_at < HS_AUTH_CACHE_TTL_MS &&
            !memcmp(s->hash, hash, 32)) {
            *out = s->e;
            hit = true;
        }
    }
    pthread_mutex_unlock(&mu);
    return hit;
}

unsigned long hs_auth_cache_generation(void) {
    pthread_mutex_lock(&mu);
    unsigned long g = generation;
    pthread_mutex_unlock(&mu);
    return g;
}

void hs_auth_cache_put(const unsigned char hash[32], const hs_auth_entry *e, unsigned long gen) {
    pthread_mutex_lock(&mu);
    if (!table && gen == generation) table = calloc(SLOTS, sizeof *table);
    if (table && gen == generation) {
        slot *s = &table[index_of(hash)];
        memcpy(s->hash, hash, 32);
        s->gen = generation;
        s->cached_at = hs_now_ms();
        s->e = *e;
    }
    pthread_mutex_unlock(&mu);
}

void hs_auth_cache_forget_all(void) {
    pthread_mutex_lock(&mu);
    generation++;
    pthread_mutex_unlock(&mu);
}
