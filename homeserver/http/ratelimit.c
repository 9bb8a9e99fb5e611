/* ratelimit.c — token buckets in a hash table, swept as they fill up. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 4096

typedef struct bucket {
    struct bucket *next;
    double tokens;
    double at;      /* seconds, monotonic, of the last refill */
    char key[];
} bucket;

static bucket *table[BUCKETS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned ops;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % BUCKETS;
}

static void refill(bucket *b, const cfg_ratelimit *rl, double t) {
    b->tokens += (t - b->at) * rl->per_second;
    if (b->tokens > rl->burst_count) b->tokens = rl->burst_count;
    b->at = t;
}

/* Drop full buckets of one chain now and then, so memory follows the load. */
static void sweep(unsigned chain, const cfg_ratelimit *rl, double t) {
    bucket **pp = &table[chain];
    while (*pp) {
        bucket *b = *pp;
        if (b->tokens + (t - b->at) * rl->per_second >= rl->burst_count) {
            *pp = b->next;
            free(b);
        } else {
            pp = &b->next;
        }
    }
}

static int limit(const char *kind, const char *who, const cfg_ratelimit *rl, bool take,
                 hs_err *err) {
    if (!rl || rl->per_second <= 0) return 0;
    char key[512];
    snprintf(key, sizeof key, "%s:%s", kind, who ? who : "");
    unsigned h = hash(key);
    double t = now_s();
    pthread_mutex_lock(&mu);
    if (++ops % 64 == 0) sweep(ops / 64 % BUCKETS, rl, t);
    bucket *b = table[h];
    while (b && strcmp(b->key, key) != 0) b = b->next;
    if (!b) {
        size_t n = strlen(key) + 1;
        b = malloc(sizeof *b + n);
        memcpy(b->key, key, n);
        b->tokens = rl->burst_count;
        b->at = t;
        b->next = table[h];
        table[h] = b;
    }
    refill(b, rl, t);
    int rc = 0;
    if (b->tokens < 1.0) {
        long long wait = (long long)((1.0 - b->tokens) / rl->per_second * 1000.0) + 1;
        rc = hs_err_set(err, 429, "M_LIMIT_EXCEEDED", "Too many requests");
        if (err) err->retry_after_ms = wait > 0 ? wait : 1;
    } else if (take) {
        b->tokens -= 1.0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

int hs_ratelimit(const char *kind, const char *who, const cfg_ratelimit *rl, hs_err *err) {
    return limit(kind, who, rl, true, err);
}

int hs_ratelimit_check(const char *kind, const char *who, const cfg_ratelimit *rl, hs_err *err) {
    return limit(kind, who, rl, false, err);
}
