/* db.h — PostgreSQL access: a connection pool, prepared statements,
 * transactions that retry serialization failures, and migrations.
 *
 * Statements are declared once where they are used:
 *     static db_stmt q = DB_STMT("SELECT user_id FROM users WHERE name = $1");
 *     PGresult *r = db_run(c, &q, 1, (const char *[]){name}, err);
 * and prepared lazily on each connection the first time it runs them. */
#ifndef DB_DB_H
#define DB_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "homeserver/core/err.h"

#define DB_MAX_STMTS 1024

typedef struct db_stmt {
    const char *sql;
    int id; /* assigned on first use; 0 = not yet */
} db_stmt;
#define DB_STMT(sql_) {(sql_), 0}

#define DB_MAX_PIPELINE 64
#define DB_MAX_PREFETCH 8

typedef struct db_prefetched db_prefetched;

typedef struct db_conn {
    PGconn *pg;
    unsigned char prepared[DB_MAX_STMTS / 8];
    bool in_txn;
    /* Statements sent in libpq's pipeline mode whose results are not read yet
     * (db_defer, db_prefetch, and the BEGIN of db_txn); for each, the id of
     * the statement it prepares (0 when it runs one) and the prefetch entry
     * its result goes to (-1: none). */
    int n_pending;
    int pending_prepare[DB_MAX_PIPELINE];
    int pending_prefetch[DB_MAX_PIPELINE];
    db_prefetched *prefetched; /* DB_MAX_PREFETCH entries, allocated on first use */
} db_conn;

typedef struct db_pool db_pool;

/* Open a pool of up to max connections to conninfo, opening min of them now.
 * When the server is unreachable, retries with back-off for about retry_secs
 * seconds (0: fail at once) before giving up with err. */
db_pool *db_pool_new(const char *conninfo, int min, int max, int retry_secs, hs_err *err);
void db_pool_free(db_pool *p);

/* Borrow a connection (waits while all are busy); give it back with db_release. */
db_conn *db_acquire(db_pool *p, hs_err *err);
void db_release(db_pool *p, db_conn *c);

/* Run a prepared statement with text parameters (NULL = SQL NULL). Returns the
 * result (caller PQclear()s it) or NULL with 500 M_UNKNOWN in err. */
PGresult *db_run(db_conn *c, db_stmt *st, int n, const char *const *params, hs_err *err);

/* db_run with binary parameters (lengths/formats as PQexecParams takes them,
 * NULL for all-text) and a binary result (result_format 1), for bytea. */
PGresult *db_run_ex(db_conn *c, db_stmt *st, int n, const char *const *params,
                    const int *lengths, const int *formats, int result_format, hs_err *err);

/* Send a write whose result the caller does not need without waiting for it:
 * it travels with the next statement (db_run, db_exec) or the COMMIT of
 * db_txn, so a run of such writes costs one round trip instead of one each
 * (libpq's pipeline mode). Its error, if any, fails that next statement or the
 * COMMIT instead, so use it only inside db_txn, where that rolls everything
 * back. Returns 0, or -1 when it could not be sent. */
int db_defer(db_conn *c, db_stmt *st, int n, const char *const *params, const int *lengths,
             const int *formats, hs_err *err);

/* Send a read now whose result the caller will ask for soon with db_run or
 * db_run_ex (same statement, same text parameters, same result format) on
 * this connection: several
 * independent reads announced together cost one round trip, and the code
 * that runs them stays as it is. The answer is as of when it was sent
 * (statements run in order). A result nobody asks for is dropped at
 * db_release. An error fails the statement that reads it back (as db_defer).
 * Returns 0, or -1 when it could not be sent (then it is simply not
 * prefetched: db_run runs the statement as usual). */
int db_prefetch(db_conn *c, db_stmt *st, int n, const char *const *params, int result_format,
                hs_err *err);

/* Same, discarding the result; returns the number of rows affected or -1. */
long db_exec(db_conn *c, db_stmt *st, int n, const char *const *params, hs_err *err);

/* A PostgreSQL text[] literal ({"a","b"}) of n strings, for "= ANY($1::text[])"
 * parameters (malloc'd). */
char *db_text_array(const char *const *items, size_t n);

/* Run a plain (unprepared, parameterless) SQL script. 0 or -1. */
int db_script(db_conn *c, const char *sql, hs_err *err);

/* Run fn inside BEGIN … COMMIT on a pooled connection. fn returns 0 to commit
 * or -1 to roll back. Serialization failures and deadlocks are retried (a few
 * times, with jitter), so fn must not have side effects outside the database. */
typedef int (*db_txn_fn)(db_conn *c, void *arg, hs_err *err);
int db_txn(db_pool *p, db_txn_fn fn, void *arg, hs_err *err);

/* Apply the built-in sql/NNN_*.sql migrations that are missing, each in its own
 * transaction, under an advisory lock so several processes can start at once.
 * Refuses (-1) a schema newer than this binary knows. */
int db_migrate(db_pool *p, hs_err *err);

/* The highest migration this binary carries. */
int db_schema_version_known(void);

#endif
