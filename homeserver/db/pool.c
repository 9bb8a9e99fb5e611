/* pool.c — a fixed-size pool of libpq connections shared by the HTTP workers.
 *
 * Connections are opened lazily up to max and kept; a broken connection is
 * reset when it is returned. Waiting for a free connection blocks the worker,
 * which is what we want: the pool size is the database's concurrency limit. */
#include "db.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "homeserver/core/log.h"

struct db_pool {
    char *conninfo;
    int max, open;
    db_conn **free_list;
    int n_free;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static atomic_int next_stmt_id = 1;

static void quiet_notices(void *arg, const char *msg) { (void)arg, (void)msg; }

static db_conn *conn_open(const char *conninfo, hs_err *err) {
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        hs_err_set(err, 500, "M_UNKNOWN", "cannot connect to PostgreSQL: %s",
                   PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    /* Notices (e.g. "relation already exists, skipping") are not for our log. */
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    db_conn *c = calloc(1, sizeof *c);
    c->pg = pg;
    return c;
}

static void conn_close(db_conn *c) {
    if (!c) return;
    PQfinish(c->pg);
    free(c);
}

db_pool *db_pool_new(const char *conninfo, int min, int max, int retry_secs, hs_err *err) {
    if (max < 1) max = 1;
    if (min > max) min = max;
    db_pool *p = calloc(1, sizeof *p);
    p->conninfo = strdup(conninfo);
    p->max = max;
    p->free_list = calloc((size_t)max, sizeof *p->free_list);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);

    /* The first connection proves the database is there; retry with back-off
     * so a database that is still starting (or briefly down) doesn't kill us. */
    int waited = 0, delay = 1;
    db_conn *first;
    while (!(first = conn_open(conninfo, err))) {
        if (waited >= retry_secs) {
            db_pool_free(p);
            return NULL;
        }
        hs_warn("%s; retrying in %d s", err->msg, delay);
        sleep((unsigned)delay);
        waited += delay;
        delay = delay * 2 > 16 ? 16 : delay * 2;
    }
    p->free_list[p->n_free++] = first;
    p->open = 1;
    for (int i = 1; i < min; i++) {
        db_conn *c = conn_open(conninfo, err);
        if (!c) break;
        p->free_list[p->n_free++] = c;
        p->open++;
    }
    return p;
}

void db_pool_free(db_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n_free; i++) conn_close(p->free_list[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->free_list);
    free(p->conninfo);
    free(p);
}

db_conn *db_acquire(db_pool *p, hs_err *err) {
    pthread_mutex_lock(&p->mu);
    while (p->n_free == 0 && p->open >= p->max) pthread_cond_wait(&p->cv, &p->mu);
    if (p->n_free > 0) {
        db_conn *c = p->free_list[--p->n_free];
        pthread_mutex_unlock(&p->mu);
        return c;
    }
    p->open++; /* reserve the slot, then connect without holding the lock */
    pthread_mutex_unlock(&p->mu);
    db_conn *c = conn_open(p->conninfo, err);
    if (!c) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return c;
}

void db_release(db_pool *p, db_conn *c) {
    if (!c) return;
    if (c->in_txn) {
        PQclear(PQexec(c->pg, "ROLLBACK"));
        c->in_txn = false;
    }
    bool broken = PQstatus(c->pg) != CONNECTION_OK;
    pthread_mutex_lock(&p->mu);
    if (broken) {
        conn_close(c);
        p->open--;
    } else {
        p->free_list[p->n_free++] = c;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int stmt_id(db_stmt *st) {
    int id = __atomic_load_n(&st->id, __ATOMIC_ACQUIRE);
    if (id) return id;
    int fresh = atomic_fetch_add(&next_stmt_id, 1);
    int expected = 0;
    if (!__atomic_compare_exchange_n(&st->id, &expected, fresh, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return expected; /* another thread won; its id stands */
    return fresh;
}

static int result_ok(PGresult *r) {
    ExecStatusType s = PQresultStatus(r);
    return s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK;
}

static void fill_db_error(PGresult *r, db_conn *c, hs_err *err) {
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
    hs_err_set(err, 500, "M_UNKNOWN", "database error %s: %s", state ? state : "", msg);
}

PGresult *db_run(db_conn *c, db_stmt *st, int n, const char *const *params, hs_err *err) {
    return db_run_ex(c, st, n, params, NULL, NULL, 0, err);
}

PGresult *db_run_ex(db_conn *c, db_stmt *st, int n, const char *const *params,
                    const int *lengths, const int *formats, int result_format, hs_err *err) {
    int id = stmt_id(st);
    if (id >= DB_MAX_STMTS) {
        hs_err_set(err, 500, "M_UNKNOWN", "too many prepared statements");
        return NULL;
    }
    char name[16];
    snprintf(name, sizeof name, "s%d", id);
    if (!(c->prepared[id / 8] & (1u << (id % 8)))) {
        PGresult *pr = PQprepare(c->pg, name, st->sql, 0, NULL);
        if (!result_ok(pr)) {
            fill_db_error(pr, c, err);
            PQclear(pr);
            return NULL;
        }
        PQclear(pr);
        c->prepared[id / 8] |= (unsigned char)(1u << (id % 8));
    }
    PGresult *r = PQexecPrepared(c->pg, name, n, params, lengths, formats, result_format);
    if (!result_ok(r)) {
        fill_db_error(r, c, err);
        PQclear(r);
        return NULL;
    }
    return r;
}

long db_exec(db_conn *c, db_stmt *st, int n, const char *const *params, hs_err *err) {
    PGresult *r = db_run(c, st, n, params, err);
    if (!r) return -1;
    long rows = atol(PQcmdTuples(r));
    PQclear(r);
    return rows;
}

int db_script(db_conn *c, const char *sql, hs_err *err) {
    PGresult *r = PQexec(c->pg, sql);
    if (!result_ok(r)) {
        fill_db_error(r, c, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* 40001 serialization_failure, 40P01 deadlock_detected: the transaction did
 * nothing and may simply be run again. */
static bool retryable(const hs_err *err) {
    return strstr(err->msg, "database error 40001") || strstr(err->msg, "database error 40P01");
}

int db_txn(db_pool *p, db_txn_fn fn, void *arg, hs_err *err) {
    db_conn *c = db_acquire(p, err);
    if (!c) return -1;
    int rc = -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (db_script(c, "BEGIN", err) < 0) break;
        c->in_txn = true;
        rc = fn(c, arg, err);
        if (rc == 0) rc = db_script(c, "COMMIT", err);
        else db_script(c, "ROLLBACK", NULL);
        c->in_txn = false;
        if (rc == 0 || !retryable(err)) break;
        if (rc != 0 && PQtransactionStatus(c->pg) != PQTRANS_IDLE) db_script(c, "ROLLBACK", NULL);
        struct timespec ts = {0, (long)(1000000L * (5 + rand() % 20) * (attempt + 1))};
        nanosleep(&ts, NULL);
    }
    db_release(p, c);
    return rc;
}

char *db_text_array(const char *const *items, size_t n) {
    size_t cap = 3;
    for (size_t i = 0; i < n; i++) cap += strlen(items[i]) * 2 + 3;
    char *arr = malloc(cap), *w = arr;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *w++ = ',';
        *w++ = '"';
        for (const char *p = items[i]; *p; p++) {
            if (*p == '"' || *p == '\\') *w++ = '\\';
            *w++ = *p;
        }
        *w++ = '"';
    }
    *w++ = '}', *w = 0;
    return arr;
}
