/* test_client_sync_data.c — what /sync gets from the account data, receipts,
 * presence and typing functions, on a real PostgreSQL (an embedded cluster
 * in a temporary folder): stream windows (from, to], rooms, private
 * receipts, who sees whose presence, typing time-outs that wake a waiting
 * /sync, and wakes held back by a write still in flight. */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "homeserver/client/account_data.h"
#include "homeserver/client/notifier.h"
#include "homeserver/client/presence.h"
#include "homeserver/client/receipts.h"
#include "homeserver/client/typing.h"
#include "homeserver/core/clock.h"
#include "homeserver/db/embedded_pg.h"
#include "homeserver/db/streams.h"

static db_embedded *pg;
static cfg conf;
static hs_server srv;
static db_conn *c;
static char tmpdir[] = "/tmp/pvyhs-syncdata-test-XXXXXX";

/* Rows changed behind the server's back: it forgets what it remembers of
 * the presence rows it wrote. */
static void sql(const char *s) {
    hs_err err = {0};
    ck_assert_msg(db_script(c, s, &err) == 0, "%s: %s", s, err.msg);
    client_presence_forget_known();
}

static void setup(void) {
    hs_err err = {0};
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    chmod(tmpdir, 0755);
    pg = db_embedded_start(tmpdir, true, &err);
    ck_assert_msg(pg != NULL, "%s", err.msg);
    srv.db = db_pool_new(db_embedded_conninfo(pg), 2, 2, 0, &err);
    ck_assert_ptr_nonnull(srv.db);
    ck_assert_int_eq(db_migrate(srv.db, &err), 0);
    ck_assert_int_eq(db_streams_init(srv.db, &err), 0);
    conf.presence_enabled = true;
    conf.presence_last_active_granularity = 60000;
    conf.presence_sync_online_timeout = 30000;
    conf.presence_idle_timeout = 300000;
    srv.cfg = &conf;
    c = db_acquire(srv.db, &err);
    sql("INSERT INTO users (user_id, created_ts) VALUES ('@a:s', 0), ('@b:s', 0), ('@c:s', 0)");
    /* @a and @b share !shared; @c is alone in !lonely; @b was in !left */
    sql("INSERT INTO current_state (room_id, type, state_key, event_id, membership) VALUES"
        " ('!shared', 'm.room.member', '@a:s', '$1', 'join'),"
        " ('!shared', 'm.room.member', '@b:s', '$2', 'join'),"
        " ('!lonely', 'm.room.member', '@c:s', '$3', 'join'),"
        " ('!left', 'm.room.member', '@a:s', '$4', 'join'),"
        " ('!left', 'm.room.member', '@c:s', '$5', 'leave')");
}

static void teardown(void) {
    db_release(srv.db, c);
    db_pool_free(srv.db);
    db_embedded_stop(pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

static json_t *J(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "%s", e.text);
    return j;
}

static void assert_json(json_t *got, const char *want) {
    json_t *w = J(want);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    char *ws = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
    ck_assert_str_eq(g, ws);
    free(g), free(ws);
    json_decref(w);
}

static void put_data(const char *user, const char *room, const char *type, const char *content) {
    hs_err err = {0};
    json_t *v = J(content);
    ck_assert_int_eq(client_account_data_put(&srv, user, room, type, v, &err), 0);
    json_decref(v);
}

START_TEST(test_account_data_windows) {
    hs_err err = {0};
    long long start = db_stream_current(DB_STREAM_ACCOUNT_DATA);
    put_data("@a:s", NULL, "m.direct", "{\"@b:s\": [\"!shared\"]}");
    put_data("@a:s", "!shared", "m.tag", "{\"tags\": {\"u.x\": {}}}");
    long long mid = db_stream_current(DB_STREAM_ACCOUNT_DATA);
    ck_assert_int_eq(mid, start + 2);
    put_data("@a:s", NULL, "m.ignored_user_list", "{\"ignored_users\": {}}");
    put_data("@b:s", NULL, "m.direct", "{}");
    long long end = db_stream_current(DB_STREAM_ACCOUNT_DATA);

    json_t *g = json_array(), *rooms = json_object();
    ck_assert_int_eq(client_account_data_sync(c, "@a:s", 0, end, g, rooms, &err), 0);
    assert_json(g, "[{\"type\": \"m.direct\", \"content\": {\"@b:s\": [\"!shared\"]}},"
                   " {\"type\": \"m.ignored_user_list\", \"content\": {\"ignored_users\": {}}}]");
    assert_json(rooms, "{\"!shared\": [{\"type\": \"m.tag\", \"content\": {\"tags\": {\"u.x\": {}}}}]}");
    json_decref(g), json_decref(rooms);

    /* only what changed after mid, and only global when rooms is NULL */
    g = json_array();
    ck_assert_int_eq(client_account_data_sync(c, "@a:s", mid, end, g, NULL, &err), 0);
    assert_json(g, "[{\"type\": \"m.ignored_user_list\", \"content\": {\"ignored_users\": {}}}]");
    json_decref(g);
    /* an empty window, and the upper bound holds */
    g = json_array(), rooms = json_object();
    ck_assert_int_eq(client_account_data_sync(c, "@a:s", end, end, g, rooms, &err), 0);
    ck_assert_int_eq(json_array_size(g) + json_object_size(rooms), 0);
    ck_assert_int_eq(client_account_data_sync(c, "@a:s", 0, start + 1, g, rooms, &err), 0);
    ck_assert_int_eq(json_array_size(g), 1);
    ck_assert_int_eq(json_object_size(rooms), 0);
    json_decref(g), json_decref(rooms);

    /* an overwrite moves the type to its new position */
    put_data("@a:s", NULL, "m.direct", "{}");
    g = json_array();
    ck_assert_int_eq(client_account_data_sync(c, "@a:s", end, db_stream_current(DB_STREAM_ACCOUNT_DATA),
                                              g, NULL, &err), 0);
    assert_json(g, "[{\"type\": \"m.direct\", \"content\": {}}]");
    json_decref(g);

    json_t *v = client_account_data_get(c, "@a:s", "", "m.direct", &err);
    assert_json(v, "{}");
    json_decref(v);
    ck_assert_ptr_null(client_account_data_get(c, "@a:s", "!shared", "m.direct", &err));
    ck_assert_int_eq(err.status, 404);
    ck_assert_str_eq(err.errcode, "M_NOT_FOUND");
}
END_TEST

START_TEST(test_receipts_by_room) {
    hs_err err = {0};
    sql("INSERT INTO receipts (room_id, receipt_type, user_id, thread_id, event_id, data, stream_id)"
        " VALUES ('!shared', 'm.read', '@a:s', '', '$e1', '{\"ts\": 1}', 1),"
        " ('!shared', 'm.read', '@b:s', '', '$e1', '{\"ts\": 2}', 2),"
        " ('!shared', 'm.read', '@b:s', 'main', '$e2', '{\"ts\": 3, \"thread_id\": \"main\"}', 3),"
        " ('!shared', 'm.read.private', '@b:s', '', '$e3', '{\"ts\": 4}', 4),"
        " ('!shared', 'm.read.private', '@a:s', '', '$e3', '{\"ts\": 5}', 5),"
        " ('!lonely', 'm.read', '@c:s', '', '$e9', '{\"ts\": 6}', 6),"
        " ('!elsewhere', 'm.read', '@c:s', '', '$e8', '{\"ts\": 7}', 7)");
    const char *rooms[] = {"!shared", "!lonely", "!quiet"};
    json_t *by = json_object();
    ck_assert_int_eq(client_receipts_sync(c, "@a:s", rooms, 3, 0, 100, by, &err), 0);
    /* @b's private receipt is not @a's to see; @a's own is */
    assert_json(by,
        "{\"!shared\": {\"type\": \"m.receipt\", \"content\": {"
        "   \"$e1\": {\"m.read\": {\"@a:s\": {\"ts\": 1}, \"@b:s\": {\"ts\": 2}}},"
        "   \"$e2\": {\"m.read\": {\"@b:s\": {\"ts\": 3, \"thread_id\": \"main\"}}},"
        "   \"$e3\": {\"m.read.private\": {\"@a:s\": {\"ts\": 5}}}}},"
        " \"!lonely\": {\"type\": \"m.receipt\", \"content\": {"
        "   \"$e9\": {\"m.read\": {\"@c:s\": {\"ts\": 6}}}}}}");
    json_decref(by);
    /* the window (2, 4] seen by @b */
    by = json_object();
    ck_assert_int_eq(client_receipts_sync(c, "@b:s", rooms, 3, 2, 4, by, &err), 0);
    assert_json(by,
        "{\"!shared\": {\"type\": \"m.receipt\", \"content\": {"
        "   \"$e2\": {\"m.read\": {\"@b:s\": {\"ts\": 3, \"thread_id\": \"main\"}}},"
        "   \"$e3\": {\"m.read.private\": {\"@b:s\": {\"ts\": 4}}}}}}");
    json_decref(by);
    by = json_object();
    ck_assert_int_eq(client_receipts_sync(c, "@b:s", rooms, 0, 0, 100, by, &err), 0);
    ck_assert_int_eq(json_object_size(by), 0);
    /* room IDs with characters PostgreSQL arrays quote */
    const char *odd[] = {"!we\"ird,{room}\\"};
    ck_assert_int_eq(client_receipts_sync(c, "@b:s", odd, 1, 0, 100, by, &err), 0);
    ck_assert_int_eq(json_object_size(by), 0);
    json_decref(by);
}
END_TEST

/* The m.presence events of a sync, by sender. */
static json_t *presence_for(const char *user, long long from, long long to) {
    hs_err err = {0};
    json_t *evs = json_array(), *by = json_object(), *e;
    size_t i;
    ck_assert_int_eq(client_presence_sync(c, user, from, to, evs, &err), 0);
    json_array_foreach(evs, i, e) {
        ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "m.presence");
        json_object_set(by, json_string_value(json_object_get(e, "sender")),
                        json_object_get(e, "content"));
    }
    json_decref(evs);
    return by;
}

START_TEST(test_presence_visibility_and_windows) {
    hs_err err = {0};
    long long start = db_stream_current(DB_STREAM_PRESENCE);
    ck_assert_msg(client_presence_set(c, &srv, "@a:s", NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(client_presence_set(c, &srv, "@b:s", "unavailable", &err), 0);
    ck_assert_int_eq(client_presence_set(c, &srv, "@c:s", "online", &err), 0);
    long long mid = db_stream_current(DB_STREAM_PRESENCE);
    ck_assert_int_eq(mid, start + 3);
    /* syncing again changes nothing anyone sees: no new position */
    ck_assert_int_eq(client_presence_set(c, &srv, "@a:s", "online", &err), 0);
    ck_assert_int_eq(client_presence_set(c, &srv, "@b:s", "offline", &err), 0);
    ck_assert_int_eq(db_stream_current(DB_STREAM_PRESENCE), mid);

    json_t *a = presence_for("@a:s", 0, mid);
    ck_assert_int_eq(json_object_size(a), 2); /* @a and @b; not @c (no shared room) */
    json_t *ac = json_object_get(a, "@a:s");
    ck_assert_str_eq(json_string_value(json_object_get(ac, "presence")), "online");
    ck_assert(json_is_true(json_object_get(ac, "currently_active")));
    ck_assert_int_lt(json_integer_value(json_object_get(ac, "last_active_ago")), 60000);
    json_t *bc = json_object_get(a, "@b:s");
    ck_assert_str_eq(json_string_value(json_object_get(bc, "presence")), "unavailable");
    ck_assert_ptr_null(json_object_get(bc, "currently_active"));
    json_decref(a);
    json_t *cc = presence_for("@c:s", 0, mid);
    ck_assert_int_eq(json_object_size(cc), 1);
    ck_assert_ptr_nonnull(json_object_get(cc, "@c:s"));
    json_decref(cc);

    /* activity: @b is online again, one new position, seen by @a */
    ck_assert_int_eq(client_presence_bump_active(c, &srv, "@b:s", &err), 0);
    long long end = db_stream_current(DB_STREAM_PRESENCE);
    ck_assert_int_eq(end, mid + 1);
    a = presence_for("@a:s", mid, end);
    ck_assert_int_eq(json_object_size(a), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "@b:s"), "presence")),
                     "online");
    json_decref(a);

    /* offline users: in incremental syncs, not in initial ones (by default) */
    sql("UPDATE presence SET state = 'offline', stream_id = stream_id WHERE user_id = '@b:s'");
    a = presence_for("@a:s", 0, end);
    ck_assert_ptr_null(json_object_get(a, "@b:s"));
    json_decref(a);
    a = presence_for("@a:s", mid, end);
    ck_assert_ptr_nonnull(json_object_get(a, "@b:s"));
    json_decref(a);
    conf.presence_include_offline_users_on_sync = true;
    a = presence_for("@a:s", 0, end);
    ck_assert_ptr_nonnull(json_object_get(a, "@b:s"));
    json_decref(a);

    /* off: nothing is sent, and set does nothing */
    conf.presence_enabled = false;
    ck_assert_int_eq(client_presence_set(c, &srv, "@c:s", "unavailable", &err), 0);
    a = presence_for("@a:s", 0, end);
    ck_assert_int_eq(json_object_size(a), 0);
    json_decref(a);
    ck_assert_int_eq(db_stream_current(DB_STREAM_PRESENCE), end);
    conf.presence_enabled = true;
    conf.presence_include_offline_users_on_sync = false;

    ck_assert_int_lt(client_presence_set(c, &srv, "@a:s", "busy", &err), 0);
    ck_assert_str_eq(err.errcode, "M_INVALID_PARAM");
}
END_TEST

static atomic_int woken;
static void on_wake(void *arg) {
    (void)arg;
    atomic_fetch_add(&woken, 1);
}

static hs_waiter *wait_on(const char *user, const char *room) {
    atomic_store(&woken, 0);
    return hs_waiter_add(user, (const char *const[]){room}, 1, on_wake, NULL);
}

START_TEST(test_presence_time_outs_wake_the_room) {
    hs_err err = {0};
    ck_assert_int_eq(client_presence_set(c, &srv, "@a:s", "online", &err), 0);
    ck_assert_int_eq(client_presence_set(c, &srv, "@b:s", "online", &err), 0);
    long long before = db_stream_current(DB_STREAM_PRESENCE);
    /* @b's client went away long ago; time-outs are applied at most once a second */
    sql("UPDATE presence SET last_sync_ts = last_sync_ts - 200000 WHERE user_id = '@b:s'");
    usleep(1100 * 1000);
    hs_waiter *w = wait_on("@a:s", "!shared");
    /* @a's next /sync start applies it; @a itself changes nothing */
    ck_assert_int_eq(client_presence_set(c, &srv, "@a:s", "online", &err), 0);
    ck_assert_int_eq(atomic_load(&woken), 1);
    hs_waiter_remove(w);
    long long after = db_stream_current(DB_STREAM_PRESENCE);
    ck_assert_int_eq(after, before + 1);
    json_t *a = presence_for("@a:s", before, after);
    ck_assert_int_eq(json_object_size(a), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "@b:s"), "presence")),
                     "offline");
    json_decref(a);
    /* idle: online turns unavailable; currently_active ends earlier */
    ck_assert_int_eq(client_presence_bump_active(c, &srv, "@b:s", &err), 0);
    sql("UPDATE presence SET last_active_ts = last_active_ts - 90000 WHERE user_id = '@b:s'");
    usleep(1100 * 1000);
    before = db_stream_current(DB_STREAM_PRESENCE);
    ck_assert_int_eq(client_presence_set(c, &srv, "@a:s", "online", &err), 0);
    a = presence_for("@a:s", before, db_stream_current(DB_STREAM_PRESENCE));
    json_t *b = json_object_get(a, "@b:s");
    ck_assert_str_eq(json_string_value(json_object_get(b, "presence")), "online");
    ck_assert(json_is_false(json_object_get(b, "currently_active")));
    json_decref(a);
    sql("UPDATE presence SET last_active_ts = last_active_ts - 600000 WHERE user_id = '@b:s'");
    usleep(1100 * 1000);
    before = db_stream_current(DB_STREAM_PRESENCE);
    ck_assert_int_eq(client_presence_set(c, &srv, "@a:s", "online", &err), 0);
    a = presence_for("@a:s", before, db_stream_current(DB_STREAM_PRESENCE));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(a, "@b:s"), "presence")),
                     "unavailable");
    json_decref(a);
}
END_TEST

START_TEST(test_typing) {
    long long p0 = db_stream_current(DB_STREAM_TYPING);
    ck_assert_ptr_null(client_typing_sync("!t1", 0, p0));
    client_typing_set("!t1", "@a:s", true, 60000);
    long long p1 = db_stream_current(DB_STREAM_TYPING);
    ck_assert_int_eq(p1, p0 + 1);
    json_t *ev = client_typing_sync("!t1", p0, p1);
    assert_json(ev, "{\"type\": \"m.typing\", \"content\": {\"user_ids\": [\"@a:s\"]}}");
    json_decref(ev);
    ck_assert_ptr_null(client_typing_sync("!t1", p1, p1));
    ck_assert_ptr_null(client_typing_sync("!t1", p0, p0)); /* not yet at p0 */
    ck_assert_ptr_null(client_typing_sync("!other", 0, p1));
    /* typing again only extends; stopping someone not typing is nothing */
    client_typing_set("!t1", "@a:s", true, 60000);
    client_typing_set("!t1", "@c:s", false, 0);
    client_typing_set("!t2", "@c:s", false, 0);
    ck_assert_int_eq(db_stream_current(DB_STREAM_TYPING), p1);

    /* a short one wakes the room when it starts and when it times out */
    hs_waiter *w = wait_on("@a:s", "!t1");
    client_typing_set("!t1", "@b:s", true, 300);
    ck_assert_int_eq(atomic_load(&woken), 1);
    hs_waiter_remove(w);
    long long p2 = db_stream_current(DB_STREAM_TYPING);
    ev = client_typing_sync("!t1", p1, p2);
    ck_assert_int_eq(json_array_size(json_object_get(json_object_get(ev, "content"), "user_ids")), 2);
    json_decref(ev);
    w = wait_on("@a:s", "!t1");
    long long t0 = hs_now_ms();
    while (atomic_load(&woken) == 0 && hs_now_ms() - t0 < 5000) usleep(10 * 1000);
    long long waited = hs_now_ms() - t0;
    hs_waiter_remove(w);
    ck_assert_int_eq(atomic_load(&woken), 1);
    ck_assert_int_ge(waited, 150);
    long long p3 = db_stream_current(DB_STREAM_TYPING);
    ck_assert_int_gt(p3, p2);
    ev = client_typing_sync("!t1", p2, p3);
    assert_json(ev, "{\"type\": \"m.typing\", \"content\": {\"user_ids\": [\"@a:s\"]}}");
    json_decref(ev);
    /* stopping: an event with nobody typing */
    client_typing_set("!t1", "@a:s", false, 0);
    long long p4 = db_stream_current(DB_STREAM_TYPING);
    ev = client_typing_sync("!t1", p3, p4);
    assert_json(ev, "{\"type\": \"m.typing\", \"content\": {\"user_ids\": []}}");
    json_decref(ev);
    /* an initial sync (from 0) still sees the room's latest state */
    ev = client_typing_sync("!t1", 0, p4);
    ck_assert_ptr_nonnull(ev);
    json_decref(ev);
}
END_TEST

/* Two writes that commit out of order: the waiters of the later one are
 * woken while it cannot be shown yet, and must be woken again when the
 * earlier one commits, although that one's writer notifies only its own
 * readers. */
START_TEST(test_wakes_held_back_by_an_earlier_write) {
    hs_err err = {0};
    long long first = db_stream_reserve(c, DB_STREAM_TO_DEVICE, &err);
    long long second = db_stream_reserve(c, DB_STREAM_TO_DEVICE, &err);
    ck_assert_int_gt(second, first);
    hs_waiter *w = wait_on("@b:s", "!shared");
    db_stream_done(DB_STREAM_TO_DEVICE, second); /* a message to @b commits */
    hs_notify_users((const char *const[]){"@b:s"}, 1);
    ck_assert_int_eq(atomic_load(&woken), 1);
    ck_assert_int_lt(db_stream_current(DB_STREAM_TO_DEVICE), second); /* not shown yet */
    hs_waiter_remove(w);
    w = wait_on("@b:s", "!shared"); /* @b's sync found nothing and waits again */
    db_stream_done(DB_STREAM_TO_DEVICE, first); /* then one to @c */
    hs_notify_users((const char *const[]){"@c:s"}, 1);
    ck_assert_int_eq(db_stream_current(DB_STREAM_TO_DEVICE), second);
    ck_assert_int_eq(atomic_load(&woken), 1);
    hs_waiter_remove(w);
    /* Nothing stays held: a write in order wakes only its own readers. */
    w = wait_on("@b:s", "!shared");
    long long third = db_stream_reserve(c, DB_STREAM_TO_DEVICE, &err);
    db_stream_done(DB_STREAM_TO_DEVICE, third);
    hs_notify_users((const char *const[]){"@c:s"}, 1);
    ck_assert_int_eq(atomic_load(&woken), 0);
    hs_waiter_remove(w);
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_sync_data");
    TCase *t = tcase_create("sync_data");
    tcase_set_timeout(t, 120);
    tcase_add_unchecked_fixture(t, setup, teardown);
    tcase_add_test(t, test_account_data_windows);
    tcase_add_test(t, test_receipts_by_room);
    tcase_add_test(t, test_presence_visibility_and_windows);
    tcase_add_test(t, test_presence_time_outs_wake_the_room);
    tcase_add_test(t, test_typing);
    tcase_add_test(t, test_wakes_held_back_by_an_earlier_write);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    /* One process: the tests share the database connections, whose prepared
     * statements and stream positions a forked test would lose. */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
