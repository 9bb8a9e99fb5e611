/* test_client_push_unread.c — the unread counts /sync reports and the
 * m.push_rules account data it carries, on a real PostgreSQL (an embedded
 * cluster in a temporary folder) with every migration applied: receipts
 * public and private, threaded and not, and one's own events as read marks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "homeserver/client/push_actions.h"
#include "homeserver/client/push_store.h"
#include "homeserver/db/db.h"
#include "homeserver/db/embedded_pg.h"

static db_embedded *pg;
static db_pool *pool;
static db_conn *c;
static char tmpdir[] = "/tmp/pvyhs-push-test-XXXXXX";

#define ROOM "!r:example.org"
#define BOB "@bob:example.org"

static void sql(const char *s) {
    hs_err err = {0};
    int rc = db_script(c, s, &err);
    if (rc != 0) fprintf(stderr, "%s: %s\n", s, err.msg);
    ck_assert_int_eq(rc, 0);
}

static void setup(void) {
    hs_err err = {0};
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    chmod(tmpdir, 0755);
    pg = db_embedded_start(tmpdir, true, &err);
    if (!pg) fprintf(stderr, "%s\n", err.msg);
    ck_assert_ptr_nonnull(pg);
    pool = db_pool_new(db_embedded_conninfo(pg), 1, 1, 0, &err);
    ck_assert_ptr_nonnull(pool);
    ck_assert_int_eq(db_migrate(pool, &err), 0);
    c = db_acquire(pool, &err);
    /* Events e1..e5 at stream positions 10..14; e0 at 9 is older than all. */
    for (int i = 0; i <= 5; i++) {
        char s[400];
        snprintf(s, sizeof s,
                 "INSERT INTO events (event_id, room_id, type, sender, depth, origin_server_ts,"
                 " stream_ordering, json) VALUES ('$e%d', '" ROOM "', 'm.room.message',"
                 " '@alice:example.org', %d, 0, %d, '\\x7b7d')",
                 i, i + 1, 9 + i);
        sql(s);
    }
}

static void teardown(void) {
    db_release(pool, c);
    db_pool_free(pool);
    db_embedded_stop(pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static void action(int e, const char *thread, bool notify, bool highlight) {
    char s[400];
    snprintf(s, sizeof s,
             "INSERT INTO event_push_actions (user_id, room_id, event_id, stream_ordering,"
             " thread_id, notify, highlight, actions, ts) VALUES ('" BOB "', '" ROOM "', '$e%d',"
             " %d, '%s', %s, %s, '[]', 0)",
             e, 9 + e, thread, notify ? "true" : "false", highlight ? "true" : "false");
    sql(s);
}

static void receipt(const char *type, const char *thread, int e) {
    char s[500];
    snprintf(s, sizeof s,
             "INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, data,"
             " stream_id) VALUES ('" ROOM "', '%s', '" BOB "', '%s', '$e%d', '{}', 1)"
             " ON CONFLICT (room_id, receipt_type, user_id, thread_id)"
             " DO UPDATE SET event_id = EXCLUDED.event_id",
             type, thread, e);
    sql(s);
}

/* The counts as "n/h" for the room total, main only, and a thread. */
static void counts(const char *want_total, const char *want_main, const char *want_threads) {
    hs_err err = {0};
    json_t *u = NULL, *t = NULL;
    ck_assert_int_eq(client_push_unread(c, BOB, ROOM, &u, NULL, &err), 0);
    char got[64];
    snprintf(got, sizeof got, "%lld/%lld",
             (long long)json_integer_value(json_object_get(u, "notification_count")),
             (long long)json_integer_value(json_object_get(u, "highlight_count")));
    ck_assert_str_eq(got, want_total);
    json_decref(u);
    ck_assert_int_eq(client_push_unread(c, BOB, ROOM, &u, &t, &err), 0);
    snprintf(got, sizeof got, "%lld/%lld",
             (long long)json_integer_value(json_object_get(u, "notification_count")),
             (long long)json_integer_value(json_object_get(u, "highlight_count")));
    ck_assert_str_eq(got, want_main);
    /* threads as "root=n/h," in key order */
    char threads[256] = "";
    if (t) {
        ck_assert_int_gt(json_object_size(t), 0);
        const char *k;
        json_t *v;
        json_object_foreach(t, k, v) {
            size_t n = strlen(threads);
            snprintf(threads + n, sizeof threads - n, "%s=%lld/%lld,", k,
                     (long long)json_integer_value(json_object_get(v, "notification_count")),
                     (long long)json_integer_value(json_object_get(v, "highlight_count")));
        }
    }
    ck_assert_str_eq(threads, want_threads);
    json_decref(u);
    json_decref(t);
}

START_TEST(unread_counts) {
    counts("0/0", "0/0", "");
    action(1, "main", true, false);
    action(2, "main", true, true);
    action(3, "$T", true, false);
    action(4, "$T", false, true); /* a highlight without notify */
    action(5, "$U", true, false);
    counts("4/2", "2/1", "$T=1/1,$U=1/0,");
    /* receipts on other rooms or other users change nothing */
    sql("INSERT INTO receipts VALUES ('!other:x', 'm.read', '" BOB "', '', '$e5', '{}', 1)");
    sql("INSERT INTO receipts VALUES ('" ROOM "', 'm.read', '@carol:x', '', '$e5', '{}', 1)");
    /* an unrelated receipt type neither */
    receipt("m.fully_read", "", 5);
    counts("4/2", "2/1", "$T=1/1,$U=1/0,");
    /* a private unthreaded receipt at e2 clears everything up to it, in every thread */
    receipt("m.read.private", "", 2);
    counts("2/1", "0/0", "$T=1/1,$U=1/0,");
    /* an older public receipt does not move it back */
    receipt("m.read", "", 1);
    counts("2/1", "0/0", "$T=1/1,$U=1/0,");
    /* a threaded receipt clears its thread only */
    receipt("m.read", "$T", 4);
    counts("1/0", "0/0", "$U=1/0,");
    /* a threaded receipt behind the unthreaded one changes nothing */
    receipt("m.read", "$U", 0);
    counts("1/0", "0/0", "$U=1/0,");
    /* one's own event in a thread reads that thread up to it */
    sql("INSERT INTO push_sent_reads VALUES ('" BOB "', '" ROOM "', '$U', 14)");
    counts("0/0", "0/0", "");
    /* new notifications after all that count again */
    action(0, "main", true, false); /* older than the receipts: read */
    counts("0/0", "0/0", "");
}
END_TEST

START_TEST(push_rules_account_data) {
    hs_err err = {0};
    json_t *ev = NULL;
    /* initial sync: always, with the defaults */
    ck_assert_int_eq(client_push_rules_account_data(c, BOB, 0, 100, &ev, &err), 0);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "m.push_rules");
    json_t *ov = json_object_get(json_object_get(json_object_get(ev, "content"), "global"), "override");
    ck_assert_uint_eq(json_array_size(ov), 13); /* the spec's, Synapse's and pvyhs's knock rule */
    json_decref(ev);
    /* incremental: only when the rules changed in (from, to] */
    ck_assert_int_eq(client_push_rules_account_data(c, BOB, 3, 100, &ev, &err), 0);
    ck_assert_ptr_null(ev);
    sql("INSERT INTO push_rules_stream VALUES ('" BOB "', 5)");
    sql("INSERT INTO push_rules (user_id, kind, rule_id, priority, pattern, actions)"
        " VALUES ('" BOB "', 'content', 'cake', 1, 'cake', '[\"notify\"]')");
    ck_assert_int_eq(client_push_rules_account_data(c, BOB, 4, 5, &ev, &err), 0);
    ck_assert_ptr_nonnull(ev);
    json_t *content = json_object_get(json_object_get(json_object_get(ev, "content"), "global"), "content");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(content, 0), "rule_id")), "cake");
    json_decref(ev);
    ck_assert_int_eq(client_push_rules_account_data(c, BOB, 5, 9, &ev, &err), 0);
    ck_assert_ptr_null(ev);
    ck_assert_int_eq(client_push_rules_account_data(c, BOB, 3, 4, &ev, &err), 0);
    ck_assert_ptr_null(ev);
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_push_unread");
    TCase *tc = tcase_create("unread");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, unread_counts);
    tcase_add_test(tc, push_rules_account_data);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* one cluster for all tests */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
