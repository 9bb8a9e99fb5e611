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

static void discard_pending(db_conn *c);
static void prefetch_drop_all(db_conn *c);

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
    prefetch_drop_all(c);
    free(c->prefetched);
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
    discard_pending(c);
    prefetch_drop_all(c);
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

static bool is_prepared(const db_conn *c, int id) {
    return c->prepared[id / 8] & (1u << (id % 8));
}

static void set_prepared(db_conn *c, int id, bool on) {
    if (on) c->prepared[id / 8] |= (unsigned char)(1u << (id % 8));
    else c->prepared[id / 8] &= (unsigned char)~(1u << (id % 8));
}

static int name_of(db_stmt *st, char name[16], hs_err *err) {
    int id = stmt_id(st);
    if (id >= DB_MAX_STMTS) return hs_err_set(err, 500, "M_UNKNOWN", "too many prepared statements");
    snprintf(name, 16, "s%d", id);
    return id;
}

/* --- pipeline mode: statements sent now, their results read later --------- */

struct db_prefetched {
    int id, n, result_format; /* id 0: a free entry */
    char **params;
    PGresult *res;
    enum { PF_PENDING, PF_READY, PF_FAILED } state;
};

static void prefetch_drop(db_prefetched *e) {
    for (int i = 0; i < e->n; i++) free(e->params[i]);
    free(e->params);
    PQclear(e->res);
    *e = (db_prefetched){0};
}

static void prefetch_drop_all(db_conn *c) {
    for (int i = 0; c->prefetched && i < DB_MAX_PREFETCH; i++)
        if (c->prefetched[i].id) prefetch_drop(&c->prefetched[i]);
}

/* The entry holding st with these text parameters, or -1. */
static int prefetch_find(db_conn *c, int id, int n, const char *const *params, int rfmt) {
    for (int i = 0; c->prefetched && i < DB_MAX_PREFETCH; i++) {
        db_prefetched *e = &c->prefetched[i];
        if (e->id != id || e->n != n || e->result_format != rfmt) continue;
        int k = 0;
        while (k < n && ((!params[k] && !e->params[k]) ||
                         (params[k] && e->params[k] && !strcmp(params[k], e->params[k]))))
            k++;
        if (k == n) return i;
    }
    return -1;
}

static int pipeline_note(db_conn *c, int ok, int prepare_id, int prefetch, hs_err *err) {
    if (!ok) {
        fill_db_error(NULL, c, err);
        return -1;
    }
    c->pending_prefetch[c->n_pending] = prefetch;
    c->pending_prepare[c->n_pending++] = prepare_id;
    return 0;
}

static int pipeline_read(db_conn *c, bool want_last, PGresult **last, hs_err *err);

/* Send st (or the parameterless sql) into the pipeline, preparing st first on
 * this connection if needed. */
static int pipeline_send(db_conn *c, db_stmt *st, const char *sql, int n, const char *const *params,
                         const int *lengths, const int *formats, int result_format, int prefetch,
                         hs_err *err) {
    /* Room for a prepare and the statement; a longer run is read back first. */
    if (c->n_pending + 2 > DB_MAX_PIPELINE && pipeline_read(c, false, NULL, err) < 0) return -1;
    if (c->n_pending == 0 && PQpipelineStatus(c->pg) == PQ_PIPELINE_OFF &&
        !PQenterPipelineMode(c->pg)) {
        fill_db_error(NULL, c, err);
        return -1;
    }
    if (!st)
        return pipeline_note(c, PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0), 0, -1,
                             err);
    char name[16];
    int id = name_of(st, name, err);
    if (id < 0) return -1;
    if (!is_prepared(c, id)) {
        if (pipeline_note(c, PQsendPrepare(c->pg, name, st->sql, 0, NULL), id, -1, err) < 0)
            return -1;
        set_prepared(c, id, true); /* undone by pipeline_read if the prepare fails */
    }
    return pipeline_note(c, PQsendQueryPrepared(c->pg, name, n, params, lengths, formats,
                                                result_format), 0, prefetch, err);
}

/* Read the results of everything sent into the pipeline and leave pipeline
 * mode. The first error is reported (what followed it was skipped by the
 * server); with want_last the last statement's result is handed back. */
static int pipeline_read(db_conn *c, bool want_last, PGresult **last, hs_err *err) {
    int rc = 0, n = c->n_pending;
    c->n_pending = 0;
    if (last) *last = NULL;
    if (!PQpipelineSync(c->pg)) {
        fill_db_error(NULL, c, err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        PGresult *r = PQgetResult(c->pg);
        if (!r) { /* the connection broke */
            if (rc == 0) fill_db_error(NULL, c, err);
            rc = -1;
            for (int k = i; k < n; k++) {
                if (c->pending_prepare[k]) set_prepared(c, c->pending_prepare[k], false);
                if (c->pending_prefetch[k] >= 0)
                    c->prefetched[c->pending_prefetch[k]].state = PF_FAILED;
            }
            return rc;
        }
        bool ok = result_ok(r);
        if (!ok && c->pending_prepare[i]) set_prepared(c, c->pending_prepare[i], false);
        if (!ok && rc == 0 && PQresultStatus(r) != PGRES_PIPELINE_ABORTED) {
            fill_db_error(r, c, err);
            rc = -1;
        }
        int pf = c->pending_prefetch[i];
        if (pf >= 0) {
            c->prefetched[pf].state = ok ? PF_READY : PF_FAILED;
            c->prefetched[pf].res = ok ? r : NULL;
            if (!ok) PQclear(r);
        } else if (ok && want_last && i == n - 1 && rc == 0) {
            *last = r;
        } else {
            PQclear(r);
        }
        PGresult *end; /* each statement's results end with a NULL */
        while ((end = PQgetResult(c->pg)) != NULL) PQclear(end);
    }
    PGresult *r;
    while ((r = PQgetResult(c->pg)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        PQclear(r);
        if (s == PGRES_PIPELINE_SYNC) break;
    }
    if (!PQexitPipelineMode(c->pg) && rc == 0) {
        fill_db_error(NULL, c, err);
        rc = -1;
    }
    if (rc < 0 && last && *last) PQclear(*last), *last = NULL;
    return rc;
}

int db_prefetch(db_conn *c, db_stmt *st, int n, const char *const *params, int result_format,
                hs_err *err) {
    if (!c->prefetched && !(c->prefetched = calloc(DB_MAX_PREFETCH, sizeof *c->prefetched)))
        return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    int id = stmt_id(st);
    if (id >= DB_MAX_STMTS || prefetch_find(c, id, n, params, result_format) >= 0) return 0;
    int slot = -1;
    for (int i = 0; i < DB_MAX_PREFETCH && slot < 0; i++)
        if (!c->prefetched[i].id) slot = i;
    if (slot < 0) return 0; /* full: the statement just runs when asked */
    db_prefetched *e = &c->prefetched[slot];
    *e = (db_prefetched){.id = id, .n = n, .result_format = result_format,
                         .params = calloc((size_t)n + 1, sizeof *e->params)};
    for (int i = 0; i < n; i++) e->params[i] = params[i] ? strdup(params[i]) : NULL;
    if (pipeline_send(c, st, NULL, n, params, NULL, NULL, result_format, slot, err) < 0) {
        prefetch_drop(e);
        return -1;
    }
    return 0;
}

/* A prefetched result for this statement, read from the pipeline if need be.
 * NULL with *taken false: not prefetched (or the prefetch failed), run it. */
static PGresult *prefetch_take(db_conn *c, int id, int n, const char *const *params, int rfmt,
                               bool *taken, hs_err *err) {
    *taken = false;
    int i = prefetch_find(c, id, n, params, rfmt);
    if (i < 0) return NULL;
    db_prefetched *e = &c->prefetched[i];
    if (e->state == PF_PENDING && pipeline_read(c, false, NULL, err) < 0) {
        prefetch_drop(e);
        *taken = true; /* the pipeline's error is this statement's */
        return NULL;
    }
    PGresult *r = e->state == PF_READY ? e->res : NULL;
    e->res = NULL;
    prefetch_drop(e);
    *taken = r != NULL;
    return r;
}

int db_defer(db_conn *c, db_stmt *st, int n, const char *const *params, const int *lengths,
             const int *formats, hs_err *err) {
    /* Outside a transaction a deferred write would commit unseen: run it. */
    if (c->n_pending == 0 && !c->in_txn && PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
        PGresult *r = db_run_ex(c, st, n, params, lengths, formats, 0, err);
        if (r) PQclear(r);
        return r ? 0 : -1;
    }
    return pipeline_send(c, st, NULL, n, params, lengths, formats, 0, -1, err);
}

/* --- statements ------------------------------------------------------------ */

PGresult *db_run(db_conn *c, db_stmt *st, int n, const char *const *params, hs_err *err) {
    return db_run_ex(c, st, n, params, NULL, NULL, 0, err);
}

PGresult *db_run_ex(db_conn *c, db_stmt *st, int n, const char *const *params,
                    const int *lengths, const int *formats, int result_format, hs_err *err) {
    if (c->prefetched && !lengths && !formats) {
        bool taken;
        PGresult *r = prefetch_take(c, stmt_id(st), n, params, result_format, &taken, err);
        if (taken) return r;
    }
    if (c->n_pending > 0) { /* ride along with what was deferred: one round trip */
        PGresult *r = NULL;
        if (pipeline_send(c, st, NULL, n, params, lengths, formats, result_format, -1, err) < 0) {
            hs_err ignored = {0};
            pipeline_read(c, false, NULL, &ignored);
            return NULL;
        }
        return pipeline_read(c, true, &r, err) < 0 ? NULL : r;
    }
    char name[16];
    int id = name_of(st, name, err);
    if (id < 0) return NULL;
    if (!is_prepared(c, id)) {
        PGresult *pr = PQprepare(c->pg, name, st->sql, 0, NULL);
        if (!result_ok(pr)) {
            fill_db_error(pr, c, err);
            PQclear(pr);
            return NULL;
        }
        PQclear(pr);
        set_prepared(c, id, true);
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

/* Anything deferred is read first (a script may hold several statements,
 * which the pipeline cannot carry), or dropped before a ROLLBACK. */
int db_script(db_conn *c, const char *sql, hs_err *err) {
    if (c->n_pending > 0 && !strcmp(sql, "ROLLBACK")) discard_pending(c);
    if (c->n_pending > 0 && pipeline_read(c, false, NULL, err) < 0) return -1;
    PGresult *r = PQexec(c->pg, sql);
    if (!result_ok(r)) {
        fill_db_error(r, c, err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return 0;
}

/* COMMIT together with what was deferred, in one round trip. */
static int commit(db_conn *c, hs_err *err) {
    if (c->n_pending == 0) return db_script(c, "COMMIT", err);
    PGresult *r = NULL;
    if (pipeline_send(c, NULL, "COMMIT", 0, NULL, NULL, NULL, 0, -1, err) < 0) {
        hs_err ignored = {0};
        pipeline_read(c, false, NULL, &ignored);
        return -1;
    }
    if (pipeline_read(c, true, &r, err) < 0) return -1;
    PQclear(r);
    return 0;
}

/* Drop what was deferred (before a ROLLBACK). */
static void discard_pending(db_conn *c) {
    if (c->n_pending == 0) return;
    hs_err ignored = {0};
    pipeline_read(c, false, NULL, &ignored);
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
        /* BEGIN travels with the transaction's first statement. */
        if (pipeline_send(c, NULL, "BEGIN", 0, NULL, NULL, NULL, 0, -1, err) < 0) break;
        c->in_txn = true;
        rc = fn(c, arg, err);
        if (rc == 0) rc = commit(c, err);
        else discard_pending(c);
        /* A COMMIT skipped because a deferred write failed leaves the
         * transaction open, as a failing fn does. */
        if (rc != 0 && PQtransactionStatus(c->pg) != PQTRANS_IDLE) db_script(c, "ROLLBACK", NULL);
        c->in_txn = false;
        if (rc == 0 || !retryable(err)) break;
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
