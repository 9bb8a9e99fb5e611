/* test_rooms_store.c — rooms/store on a real PostgreSQL (an embedded cluster
 * in a temporary folder): persisting signed events, state before and after
 * each, forward extremities, current state across a fork, outliers, rejected
 * and soft-failed events, auth chains, idempotence. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "homeserver/db/db.h"
#include "homeserver/db/embedded_pg.h"
#include "rooms/store.h"

static db_embedded *pg;
static db_pool *pool;
static db_conn *c;
static hs_signing_key key;
static char tmpdir[] = "/tmp/pvyhs-store-test-XXXXXX";

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
    hs_signing_key_generate(&key);
}

static void teardown(void) {
    db_release(pool, c);
    db_pool_free(pool);
    db_embedded_stop(pg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
}

typedef struct room {
    const room_version *v;
    char room_id[128];
    room_event *evs[64];
    int n;
    long long ts;
} room;

/* Build, hash, sign and parse an event with the given prev events (NULL:
 * the last one) and auth events (create + listed). */
static room_event *make(room *r, const char *type, const char *sk, const char *sender,
                        const char *content, const room_event *const *prev, int n_prev,
                        const room_event *const *auth, int n_auth) {
    json_error_t je;
    json_t *j = json_pack("{s:s, s:s, s:o, s:I, s:I}", "type", type, "sender", sender, "content",
                          json_loads(content, 0, &je), "origin_server_ts", (json_int_t)++r->ts,
                          "depth", (json_int_t)(r->n + 1));
    if (sk) json_object_set_new(j, "state_key", json_string(sk));
    bool create = !strcmp(type, "m.room.create");
    if (!create || !r->v->hydra) json_object_set_new(j, "room_id", json_string(r->room_id));
    json_t *pa = json_array(), *aa = json_array();
    const room_event *last = r->n ? r->evs[r->n - 1] : NULL;
    if (!prev && last) json_array_append_new(pa, json_string(last->event_id));
    for (int i = 0; prev && i < n_prev; i++) json_array_append_new(pa, json_string(prev[i]->event_id));
    if (!create && !r->v->hydra) json_array_append_new(aa, json_string(r->evs[0]->event_id));
    for (int i = 0; i < n_auth; i++) json_array_append_new(aa, json_string(auth[i]->event_id));
    json_object_set_new(j, "prev_events", pa);
    json_object_set_new(j, "auth_events", aa);
    hs_err err = {0};
    ck_assert_int_eq(room_event_finish(r->v, j, "example.org", &key, &err), 0);
    room_event *e = room_event_parse(r->v, j, &err);
    if (!e) fprintf(stderr, "parse: %s\n", err.msg);
    ck_assert_ptr_nonnull(e);
    json_decref(j);
    if (create && r->v->hydra) snprintf(r->room_id, sizeof r->room_id, "%s", e->room_id);
    if (create && !r->v->hydra) ck_assert_str_eq(e->room_id, r->room_id);
    r->evs[r->n++] = e;
    return e;
}

static void persist(const room_event *e, bool outlier, const char *rejected, bool soft,
                    const room_state_map *before) {
    hs_err err = {0};
    room_persist_item it = {e, outlier, soft, rejected, before, 0, 0, false, false, false};
    db_script(c, "BEGIN", &err);
    int rc = room_store_persist(c, &it, 1, &err);
    if (rc < 0) fprintf(stderr, "persist: %s\n", err.msg);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(db_script(c, "COMMIT", &err), 0);
}

static const char *cur(const char *room_id, const char *type, const char *sk) {
    static char buf[128];
    room_state_map *m = room_state_map_new();
    hs_err err = {0};
    ck_assert_int_eq(room_store_current_state(c, room_id, m, &err), 0);
    const char *v = room_state_map_get(m, type, sk);
    snprintf(buf, sizeof buf, "%s", v ? v : "");
    room_state_map_free(m);
    return buf;
}

static void basic_room(room *r, const char *ver) {
    static long long rooms_made;
    memset(r, 0, sizeof *r);
    r->v = room_version_get(ver);
    r->ts = ++rooms_made * 1000000; /* v12 room IDs come from the create event: keep them apart */
    snprintf(r->room_id, sizeof r->room_id, "!r%s:example.org", ver);
    room_event *cr = make(r, "m.room.create", "", "@alice:example.org",
                          r->v->implicit_room_creator ? "{}" : "{\"creator\":\"@alice:example.org\"}",
                          NULL, 0, NULL, 0);
    persist(cr, false, NULL, false, NULL);
    room_event *m = make(r, "m.room.member", "@alice:example.org", "@alice:example.org",
                         "{\"membership\":\"join\"}", NULL, 0, NULL, 0);
    persist(m, false, NULL, false, NULL);
    room_event *pl = make(r, "m.room.power_levels", "", "@alice:example.org",
                          "{\"users\":{\"@alice:example.org\":100}}", NULL, 0,
                          (const room_event *[]){m}, 1);
    persist(pl, false, NULL, false, NULL);
}

static void free_room(room *r) {
    for (int i = 0; i < r->n; i++) room_event_free(r->evs[i]);
}

START_TEST(linear_history) {
    room r;
    basic_room(&r, "12");
    room_event *msg = make(&r, "m.room.message", NULL, "@alice:example.org",
                           "{\"body\":\"hi\",\"msgtype\":\"m.text\"}", NULL, 0, NULL, 0);
    persist(msg, false, NULL, false, NULL);
    room_event *topic = make(&r, "m.room.topic", "", "@alice:example.org", "{\"topic\":\"t\"}",
                             NULL, 0, NULL, 0);
    persist(topic, false, NULL, false, NULL);
    ck_assert_str_eq(cur(r.room_id, "m.room.topic", ""), topic->event_id);
    ck_assert_str_eq(cur(r.room_id, "m.room.create", ""), r.evs[0]->event_id);
    hs_err err = {0};
    room_state_map *m = room_state_map_new();
    ck_assert_int_eq(room_store_state_at(c, topic->event_id, false, m, &err), 0);
    ck_assert_int_eq(room_state_map_count(m), 3); /* create, member, power levels */
    ck_assert_ptr_null(room_state_map_get(m, "m.room.topic", ""));
    ck_assert_int_eq(room_store_state_at(c, topic->event_id, true, m, &err), 0);
    ck_assert_str_eq(room_state_map_get(m, "m.room.topic", ""), topic->event_id);
    char **ids;
    size_t n;
    long long depth;
    ck_assert_int_eq(room_store_extremities(c, r.room_id, &ids, &n, &depth, &err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(ids[0], topic->event_id);
    ck_assert_int_eq(depth, topic->depth);
    room_store_free_ids(ids, n);
    /* Persisting again changes nothing. */
    persist(topic, false, NULL, false, NULL);
    ck_assert_int_eq(room_store_extremities(c, r.room_id, &ids, &n, NULL, &err), 0);
    ck_assert_int_eq(n, 1);
    room_store_free_ids(ids, n);
    /* Stored bytes round-trip to the same event. */
    room_event *back = room_store_get_event(c, topic->event_id, &err);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(back->event_id, topic->event_id);
    ck_assert_int_eq(room_event_check_content_hash(back->json, &err), 0);
    room_event_free(back);
    ck_assert_ptr_null(room_store_get_event(c, "$nope", &err));
    ck_assert_int_eq(err.status, 404);
    ck_assert_ptr_eq(room_store_room_version(c, r.room_id, &err), room_version_get("12"));
    room_state_map_free(m);
    free_room(&r);
}
END_TEST

START_TEST(fork_resolves_current_state) {
    room r;
    basic_room(&r, "10");
    const room_event *base = r.evs[r.n - 1];
    const room_event *pl = r.evs[2], *member = r.evs[1];
    room_event *t1 = make(&r, "m.room.topic", "", "@alice:example.org", "{\"topic\":\"one\"}",
                          &base, 1, (const room_event *[]){pl, member}, 2);
    room_event *t2 = make(&r, "m.room.topic", "", "@alice:example.org", "{\"topic\":\"two\"}",
                          &base, 1, (const room_event *[]){pl, member}, 2);
    persist(t1, false, NULL, false, NULL);
    persist(t2, false, NULL, false, NULL);
    hs_err err = {0};
    char **ids;
    size_t n;
    ck_assert_int_eq(room_store_extremities(c, r.room_id, &ids, &n, NULL, &err), 0);
    ck_assert_int_eq(n, 2);
    room_store_free_ids(ids, n);
    /* Same sender, same power: mainline order falls to origin_server_ts, so the later wins. */
    ck_assert_str_eq(cur(r.room_id, "m.room.topic", ""), t2->event_id);
    /* A merge event closes the fork; its state before is the resolution. */
    room_state_map *m = room_state_map_new();
    ck_assert_int_eq(room_store_current_state(c, r.room_id, m, &err), 0);
    room_event *merge = make(&r, "m.room.message", NULL, "@alice:example.org",
                             "{\"body\":\"merged\",\"msgtype\":\"m.text\"}",
                             (const room_event *[]){t1, t2}, 2, (const room_event *[]){pl, member}, 2);
    persist(merge, false, NULL, false, m);
    ck_assert_int_eq(room_store_extremities(c, r.room_id, &ids, &n, NULL, &err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(ids[0], merge->event_id);
    room_store_free_ids(ids, n);
    ck_assert_str_eq(cur(r.room_id, "m.room.topic", ""), t2->event_id);
    room_state_map_free(m);
    free_room(&r);
}
END_TEST

START_TEST(rejected_soft_failed_and_outliers) {
    room r;
    basic_room(&r, "12");
    room_event *bad = make(&r, "m.room.topic", "", "@mallory:evil.org", "{\"topic\":\"x\"}", NULL,
                           0, NULL, 0);
    persist(bad, false, "sender not in room", false, NULL);
    ck_assert_str_eq(cur(r.room_id, "m.room.topic", ""), "");
    hs_err err = {0};
    room_event *back = room_store_get_event(c, bad->event_id, &err);
    ck_assert(back->rejected);
    room_event_free(back);
    /* A rejected state event does not enter the state after it. */
    room_state_map *m = room_state_map_new();
    ck_assert_int_eq(room_store_state_at(c, bad->event_id, true, m, &err), 0);
    ck_assert_ptr_null(room_state_map_get(m, "m.room.topic", ""));
    char **ids;
    size_t n;
    ck_assert_int_eq(room_store_extremities(c, r.room_id, &ids, &n, NULL, &err), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_ne(ids[0], bad->event_id);
    room_store_free_ids(ids, n);

    const room_event *pl = r.evs[2];
    room_event *soft = make(&r, "m.room.name", "", "@alice:example.org", "{\"name\":\"n\"}",
                            &pl, 1, NULL, 0);
    persist(soft, false, NULL, true, NULL);
    ck_assert_str_eq(cur(r.room_id, "m.room.name", ""), "");

    /* An outlier has no state until it is persisted for real. */
    room_event *out = make(&r, "m.room.name", "", "@alice:example.org", "{\"name\":\"o\"}", &pl,
                           1, NULL, 0);
    persist(out, true, NULL, false, NULL);
    ck_assert_int_eq(room_store_state_at(c, out->event_id, false, m, &err), -1);
    ck_assert_int_eq(err.status, 404);
    persist(out, false, NULL, false, NULL);
    ck_assert_int_eq(room_store_state_at(c, out->event_id, true, m, &err), 0);
    ck_assert_str_eq(room_state_map_get(m, "m.room.name", ""), out->event_id);
    room_state_map_free(m);
    free_room(&r);
}
END_TEST

START_TEST(auth_chain_in_the_database) {
    room r;
    basic_room(&r, "10");
    const room_event *pl = r.evs[2], *member = r.evs[1];
    room_event *t = make(&r, "m.room.topic", "", "@alice:example.org", "{\"topic\":\"a\"}", NULL,
                         0, (const room_event *[]){pl, member}, 2);
    persist(t, false, NULL, false, NULL);
    hs_err err = {0};
    char **ids;
    size_t n;
    ck_assert_int_eq(room_store_auth_chain(c, (const char *[]){t->event_id}, 1, &ids, &n, &err), 0);
    ck_assert_int_eq(n, 3); /* create, alice's join (its auth: create), power levels */
    room_store_free_ids(ids, n);
    free_room(&r);
}
END_TEST

START_TEST(state_groups_snapshot_after_long_chain) {
    hs_err err = {0};
    room_state_map *m = room_state_map_new();
    room_state_map_set(m, "m.room.create", "", "$c");
    long long g = room_state_group_store(c, "!g:x", 0, NULL, m, &err);
    long long first = g;
    char id[32];
    for (int i = 0; i < 250; i++) {
        snprintf(id, sizeof id, "$t%d", i);
        g = room_state_group_add_one(c, "!g:x", g, "m.room.topic", "", id, &err);
        ck_assert_int_gt(g, 0);
    }
    ck_assert_int_eq(room_state_group_load(c, g, m, &err), 0);
    ck_assert_int_eq(room_state_map_count(m), 2);
    ck_assert_str_eq(room_state_map_get(m, "m.room.topic", ""), "$t249");
    PGresult *res = PQexec(c->pg, "SELECT max(chain_len), count(*) FILTER (WHERE prev_group IS NULL)"
                                  " FROM state_groups WHERE room_id = '!g:x'");
    ck_assert_int_lt(atoi(PQgetvalue(res, 0, 0)), ROOM_STATE_MAX_CHAIN);
    ck_assert_int_ge(atoi(PQgetvalue(res, 0, 1)), 3);
    PQclear(res);
    /* Equal state reuses the group; a removal is a delta too. */
    room_state_map *m2 = room_state_map_copy(m);
    ck_assert_int_eq(room_state_group_store(c, "!g:x", g, m, m2, &err), g);
    room_state_map_remove(m2, "m.room.topic", "");
    room_state_map_set(m2, "a", "1", "$1"), room_state_map_set(m2, "a", "2", "$2");
    long long g2 = room_state_group_store(c, "!g:x", g, m, m2, &err);
    ck_assert_int_gt(g2, g);
    ck_assert_int_eq(room_state_group_load(c, g2, m, &err), 0);
    ck_assert(room_state_map_equal(m, m2));
    ck_assert_int_gt(first, 0);
    room_state_map_free(m);
    room_state_map_free(m2);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_store");
    TCase *tc = tcase_create("store");
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, linear_history);
    tcase_add_test(tc, fork_resolves_current_state);
    tcase_add_test(tc, rejected_soft_failed_and_outliers);
    tcase_add_test(tc, auth_chain_in_the_database);
    tcase_add_test(tc, state_groups_snapshot_after_long_chain);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK); /* one cluster for all tests */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
