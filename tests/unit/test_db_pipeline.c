/* test_db_pipeline.c — deferred writes (db_defer) and db_txn's pipelined
 * BEGIN/COMMIT, on a real PostgreSQL: what is deferred is written, an error in
 * a deferred write fails the statement or COMMIT that follows it and rolls the
 * transaction back, and a statement first prepared inside a failed pipeline
 * can still be used afterwards. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "homeserver/db/db.h"
#include "homeserver/db/embedded_pg.h"

static db_embedded *pg;
static db_pool *pool;
static char tmpdir[] = "/tmp/pvyhs-dbpipe-test-XXXXXX";

static db_stmt ins = DB_STMT("INSERT INTO t (k, v) VALUES ($1::int, $2)");
static db_stmt count = DB_STMT("SELECT count(*), coalesce(string_agg(v, ',' ORDER BY k), '') FROM t");

/* One PostgreSQL for the suite; each test (a child process) its own pool of
 * one connection and an empty table. */
static void start_pg(void) {
    hs_err err = {0};
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    chmod(tmpdir, 0755);
    pg = db_embedded_start(tmpdir, true, &err);
    ck_assert_ptr_nonnull(pg);
}

static void setup(void) {
    hs_err err = {0};
    pool = db_pool_new(db_embedded_conninfo(pg), 1, 1, 0, &err);
    ck_assert_ptr_nonnull(pool);
    db_conn *c = db_acquire(pool, &err);
    ck_assert_int_eq(db_script(c, "DROP TABLE IF EXISTS t;"
                                  " CREATE TABLE t (k int PRIMARY KEY, v text NOT NULL)", &err), 0);
    db_release(pool, c);
}

static void teardown(void) { db_pool_free(pool); }

static void stop_pg(void) {
    db_embedded_stop(pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* The rows of t as "count:v1,v2,…", read on a fresh transaction. */
static const char *rows(void) {
    static char buf[4096];
    hs_err err = {0};
    db_conn *c = db_acquire(pool, &err);
    PGresult *r = db_run(c, &count, 0, NULL, &err);
    ck_assert_msg(r != NULL, "%s", err.msg);
    snprintf(buf, sizeof buf, "%s:%s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
    db_release(pool, c);
    return buf;
}

static int defer_row(db_conn *c, int k, const char *v, hs_err *err) {
    char ks[16];
    snprintf(ks, sizeof ks, "%d", k);
    return db_defer(c, &ins, 2, (const char *[]){ks, v}, NULL, NULL, err);
}

/* Two deferred rows, then a read in the same transaction sees them. */
static int two_then_read(db_conn *c, void *arg, hs_err *err) {
    if (defer_row(c, 1, "a", err) < 0 || defer_row(c, 2, "b", err) < 0) return -1;
    PGresult *r = db_run(c, &count, 0, NULL, err);
    if (!r) return -1;
    *(int *)arg = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return defer_row(c, 3, "c", err); /* carried by the COMMIT */
}

START_TEST(deferred_writes_are_seen_and_committed) {
    hs_err err = {0};
    int seen = -1;
    ck_assert_int_eq(db_txn(pool, two_then_read, &seen, &err), 0);
    ck_assert_int_eq(seen, 2);
    ck_assert_str_eq(rows(), "3:a,b,c");
}
END_TEST

/* A deferred duplicate key: the statement after it fails with its error, and
 * db_txn rolls everything back. */
static int dup_then_read(db_conn *c, void *arg, hs_err *err) {
    (void)arg;
    if (defer_row(c, 7, "x", err) < 0 || defer_row(c, 7, "y", err) < 0) return -1;
    PGresult *r = db_run(c, &count, 0, NULL, err);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

static int dup_at_commit(db_conn *c, void *arg, hs_err *err) {
    (void)arg;
    if (defer_row(c, 8, "x", err) < 0 || defer_row(c, 8, "y", err) < 0) return -1;
    return 0;
}

START_TEST(deferred_error_fails_the_next_statement_or_commit) {
    hs_err err = {0};
    ck_assert_int_eq(db_txn(pool, dup_then_read, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "23505")); /* unique_violation */
    ck_assert_str_eq(rows(), "0:");
    hs_err err2 = {0};
    ck_assert_int_eq(db_txn(pool, dup_at_commit, NULL, &err2), -1);
    ck_assert_ptr_nonnull(strstr(err2.msg, "23505"));
    ck_assert_str_eq(rows(), "0:");
    /* The connection is usable afterwards. */
    int seen = -1;
    ck_assert_int_eq(db_txn(pool, two_then_read, &seen, &err), 0);
    ck_assert_str_eq(rows(), "3:a,b,c");
}
END_TEST

/* A statement prepared inside a pipeline that failed before it: its prepare
 * was skipped, so it must be prepared again on next use. */
static db_stmt late = DB_STMT("SELECT $1::int + 1");
static db_stmt bad = DB_STMT("SELECT 1/0");

static int bad_then_late(db_conn *c, void *arg, hs_err *err) {
    (void)arg;
    if (db_defer(c, &bad, 0, NULL, NULL, NULL, err) < 0) return -1;
    if (db_defer(c, &late, 1, (const char *[]){"1"}, NULL, NULL, err) < 0) return -1;
    PGresult *r = db_run(c, &count, 0, NULL, err);
    if (r) PQclear(r);
    return r ? 0 : -1;
}

static int use_late(db_conn *c, void *arg, hs_err *err) {
    PGresult *r = db_run(c, &late, 1, (const char *[]){"41"}, err);
    if (!r) return -1;
    *(int *)arg = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

START_TEST(prepare_skipped_by_an_error_is_redone) {
    hs_err err = {0};
    ck_assert_int_eq(db_txn(pool, bad_then_late, NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "22012")); /* division_by_zero */
    int v = 0;
    hs_err err2 = {0};
    ck_assert_msg(db_txn(pool, use_late, &v, &err2) == 0, "%s", err2.msg);
    ck_assert_int_eq(v, 42);
}
END_TEST

/* More deferred writes than one pipeline holds, then a multi-statement script
 * (which cannot travel in a pipeline) in the same transaction. */
static int many_then_script(db_conn *c, void *arg, hs_err *err) {
    (void)arg;
    for (int k = 100; k < 100 + 3 * DB_MAX_PIPELINE; k++)
        if (defer_row(c, k, "m", err) < 0) return -1;
    return db_script(c, "UPDATE t SET v = 'n' WHERE k = 100; UPDATE t SET v = 'o' WHERE k = 101",
                     err);
}

static int nothing(db_conn *c, void *arg, hs_err *err) {
    (void)c, (void)arg, (void)err;
    return 0;
}

START_TEST(long_runs_and_scripts) {
    hs_err err = {0};
    ck_assert_int_eq(db_txn(pool, many_then_script, NULL, &err), 0);
    char want[16];
    snprintf(want, sizeof want, "%d:", 3 * DB_MAX_PIPELINE);
    ck_assert_int_eq(strncmp(rows(), want, strlen(want)), 0);
    ck_assert_ptr_nonnull(strstr(rows(), ":n,o,m,"));
    /* An empty transaction: BEGIN and COMMIT in one round trip. */
    ck_assert_int_eq(db_txn(pool, nothing, NULL, &err), 0);
}
END_TEST

/* A caller that gives up after deferring (returns -1 without reading) leaves
 * a clean connection: nothing written. */
static int defer_and_fail(db_conn *c, void *arg, hs_err *err) {
    (void)arg;
    defer_row(c, 9, "z", err);
    return hs_err_set(err, 400, "M_BAD_JSON", "changed my mind");
}

START_TEST(giving_up_discards_deferred_writes) {
    hs_err err = {0};
    ck_assert_int_eq(db_txn(pool, defer_and_fail, NULL, &err), -1);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    ck_assert_str_eq(rows(), "0:");
}
END_TEST

/* Prefetched reads: served to the db_run that asks for them (same statement,
 * same parameters) in one round trip with what else was sent; another
 * parameter runs as usual; an unused one is dropped at release. */
static db_stmt by_key = DB_STMT("SELECT v FROM t WHERE k = $1::int");
static db_stmt txid = DB_STMT("SELECT txid_current_if_assigned() IS NULL, $1::text");

static const char *value_of(db_conn *c, const char *k, hs_err *err) {
    static char buf[64];
    PGresult *r = db_run(c, &by_key, 1, (const char *[]){k}, err);
    ck_assert_msg(r != NULL, "%s", err->msg);
    snprintf(buf, sizeof buf, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "-");
    PQclear(r);
    return buf;
}

START_TEST(prefetched_reads_are_served_once) {
    hs_err err = {0};
    db_conn *c = db_acquire(pool, &err);
    ck_assert_int_eq(db_script(c, "INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')", &err), 0);
    ck_assert_int_eq(db_prefetch(c, &by_key, 1, (const char *[]){"1"}, 0, &err), 0);
    ck_assert_int_eq(db_prefetch(c, &by_key, 1, (const char *[]){"2"}, 0, &err), 0);
    ck_assert_int_eq(db_prefetch(c, &by_key, 1, (const char *[]){"3"}, 0, &err), 0);
    /* A change after the prefetch was sent: the prefetched answer predates it. */
    ck_assert_int_eq(db_script(c, "UPDATE t SET v = 'TWO' WHERE k = 2", &err), 0);
    ck_assert_str_eq(value_of(c, "2", &err), "two");
    ck_assert_str_eq(value_of(c, "1", &err), "one");
    /* Served once: asked again, it runs. */
    ck_assert_str_eq(value_of(c, "2", &err), "TWO");
    ck_assert_str_eq(value_of(c, "9", &err), "-");
    db_release(pool, c); /* "3" was never asked for */
    c = db_acquire(pool, &err);
    ck_assert_str_eq(value_of(c, "3", &err), "three");
    /* Outside a transaction the prefetched statements run in autocommit. */
    ck_assert_int_eq(db_prefetch(c, &txid, 1, (const char *[]){"x"}, 0, &err), 0);
    PGresult *r = db_run(c, &txid, 1, (const char *[]){"x"}, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "x");
    PQclear(r);
    ck_assert_int_eq(PQtransactionStatus(c->pg), PQTRANS_IDLE);
    db_release(pool, c);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("db_pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_add_unchecked_fixture(tc, start_pg, stop_pg);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, deferred_writes_are_seen_and_committed);
    tcase_add_test(tc, deferred_error_fails_the_next_statement_or_commit);
    tcase_add_test(tc, prepare_skipped_by_an_error_is_redone);
    tcase_add_test(tc, long_runs_and_scripts);
    tcase_add_test(tc, giving_up_discards_deferred_writes);
    tcase_add_test(tc, prefetched_reads_are_served_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
