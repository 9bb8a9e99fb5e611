/* streams.c — reserving stream positions and tracking which are committed. */
#include "streams.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* Positions are taken from the sequence RESERVE_BLOCK at a time, so a writer
 * rarely waits for a round trip under the lock: positions reserved but not
 * yet handed out count as in flight (a reader is never told past them). */
#define RESERVE_BLOCK 64

typedef struct tracker {
    const char *seq;       /* NULL: an in-memory counter */
    long long done_max;    /* highest position ever done */
    long long *inflight;
    size_t n, cap;
    long long block[RESERVE_BLOCK]; /* taken from the sequence, ascending */
    int block_next, block_len;      /* block[block_next..block_len) not handed out */
} tracker;

static tracker streams[DB_STREAM_COUNT] = {
    [DB_STREAM_EVENTS] = {.seq = "events_stream_seq"},
    [DB_STREAM_ACCOUNT_DATA] = {.seq = "account_data_stream_seq"},
    [DB_STREAM_RECEIPTS] = {.seq = "receipts_stream_seq"},
    [DB_STREAM_TYPING] = {.seq = NULL},
    [DB_STREAM_TO_DEVICE] = {.seq = "to_device_stream_seq"},
    [DB_STREAM_DEVICE_LISTS] = {.seq = "device_lists_stream_seq"},
    [DB_STREAM_PRESENCE] = {.seq = "presence_stream_seq"},
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static void (*_Atomic on_advance)(void);

static long long current_locked(const tracker *t) {
    long long cur = t->done_max;
    for (size_t i = 0; i < t->n; i++)
        if (t->inflight[i] - 1 < cur) cur = t->inflight[i] - 1;
    if (t->block_next < t->block_len && t->block[t->block_next] - 1 < cur)
        cur = t->block[t->block_next] - 1;
    return cur;
}

int db_streams_init(db_pool *p, hs_err *err) {
    db_conn *c = db_acquire(p, err);
    if (!c) return -1;
    int rc = 0;
    for (int s = 0; s < DB_STREAM_COUNT && rc == 0; s++) {
        if (!streams[s].seq) continue;
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s",
                 streams[s].seq);
        PGresult *r = PQexec(c->pg, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = hs_err_set(err, 500, "M_UNKNOWN", "cannot read %s: %s", streams[s].seq,
                            PQerrorMessage(c->pg));
        else
            streams[s].done_max = atoll(PQgetvalue(r, 0, 0));
        streams[s].block_next = streams[s].block_len = 0; /* another database's */
        PQclear(r);
    }
    db_release(p, c);
    return rc;
}

/* Another process (the CLI) may take values between ours: the block need not
 * be contiguous, only ascending. */
static int refill(db_conn *c, tracker *t, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT nextval($1::regclass) AS v FROM generate_series(1, $2::int) ORDER BY v");
    char n[16];
    snprintf(n, sizeof n, "%d", RESERVE_BLOCK);
    PGresult *r = db_run(c, &q, 2, (const char *[]){t->seq, n}, err);
    if (!r) return -1;
    int got = PQntuples(r);
    for (int i = 0; i < got && i < RESERVE_BLOCK; i++) t->block[i] = atoll(PQgetvalue(r, i, 0));
    PQclear(r);
    if (got < 1) return hs_err_set(err, 500, "M_UNKNOWN", "%s gave no value", t->seq);
    t->block_next = 0;
    t->block_len = got < RESERVE_BLOCK ? got : RESERVE_BLOCK;
    return 0;
}

long long db_stream_reserve(db_conn *c, db_stream s, hs_err *err) {
    tracker *t = &streams[s];
    /* nextval and registering it happen under one lock, so no reader can see
     * a later position done while this one is not yet known to be in flight. */
    pthread_mutex_lock(&mu);
    long long pos;
    if (t->seq) {
        if (t->block_next == t->block_len && refill(c, t, err) < 0) {
            pthread_mutex_unlock(&mu);
            return -1;
        }
        pos = t->block[t->block_next++];
    } else {
        pos = t->done_max + (long long)t->n + 1;
        for (size_t i = 0; i < t->n; i++)
            if (t->inflight[i] >= pos) pos = t->inflight[i] + 1;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->inflight = realloc(t->inflight, t->cap * sizeof *t->inflight);
    }
    t->inflight[t->n++] = pos;
    pthread_mutex_unlock(&mu);
    return pos;
}

void db_stream_done(db_stream s, long long pos) {
    tracker *t = &streams[s];
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < t->n; i++)
        if (t->inflight[i] == pos) {
            t->inflight[i] = t->inflight[--t->n];
            break;
        }
    if (pos > t->done_max) t->done_max = pos;
    /* Past pos: positions done while this one was in flight are shown now. */
    bool released = current_locked(t) > pos;
    pthread_mutex_unlock(&mu);
    void (*fn)(void) = on_advance;
    if (released && fn) fn();
}

long long db_stream_current(db_stream s) {
    pthread_mutex_lock(&mu);
    long long cur = current_locked(&streams[s]);
    pthread_mutex_unlock(&mu);
    return cur;
}

bool db_streams_held_back(long long upto[DB_STREAM_COUNT]) {
    bool any = false;
    pthread_mutex_lock(&mu);
    for (int s = 0; s < DB_STREAM_COUNT; s++) {
        upto[s] = current_locked(&streams[s]) < streams[s].done_max ? streams[s].done_max : 0;
        any |= upto[s] > 0;
    }
    pthread_mutex_unlock(&mu);
    return any;
}

bool db_streams_reached(const long long upto[DB_STREAM_COUNT]) {
    bool ok = true;
    pthread_mutex_lock(&mu);
    for (int s = 0; s < DB_STREAM_COUNT && ok; s++) ok = current_locked(&streams[s]) >= upto[s];
    pthread_mutex_unlock(&mu);
    return ok;
}

void db_stream_on_advance(void (*fn)(void)) { on_advance = fn; }
