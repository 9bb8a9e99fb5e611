/* test_client_sliding.c — the pure parts of a sliding sync request
 * (homeserver/client/sliding_request.c): the pos format, the body's shape
 * (400 M_BAD_JSON for what Synapse's model refuses), and when a room's
 * required_state widened (the state is sent again). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/sliding_sync.h"

START_TEST(test_pos) {
    long long seq = -1;
    sync_token t;
    char tok[256];
    memset(&t, 0, sizeof t);
    t.pos[0] = 42;
    strcpy(tok, "7/");
    sync_token_format(&t, tok + 2, sizeof tok - 2);
    ck_assert(ss_pos_parse(tok, &seq, &t));
    ck_assert_int_eq(seq, 7);
    ck_assert_int_eq(t.pos[0], 42);
    /* a plain sync token (an older pvyhs's pos), garbage, a bad count */
    ck_assert(!ss_pos_parse(tok + 2, &seq, &t));
    ck_assert(!ss_pos_parse("garbage", &seq, &t));
    ck_assert(!ss_pos_parse("/s1_2", &seq, &t));
    ck_assert(!ss_pos_parse("-1/s1_2", &seq, &t));
    ck_assert(!ss_pos_parse("1x/s1_2", &seq, &t));
    ck_assert(!ss_pos_parse("99999999999999999999/s1_2", &seq, &t));
    ck_assert(!ss_pos_parse("3/nonsense", &seq, &t));
}
END_TEST

static int check(const char *body) {
    json_error_t je;
    json_t *b = json_loads(body, 0, &je);
    ck_assert_ptr_nonnull(b);
    hs_err err = {0};
    int rc = ss_request_check(b, &err);
    if (rc < 0) {
        ck_assert_int_eq(err.status, 400);
        ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    }
    json_decref(b);
    return rc;
}

START_TEST(test_body_shape) {
    ck_assert_int_eq(check("{}"), 0);
    ck_assert_int_eq(check("{\"conn_id\": \"main\", \"lists\": {\"a\": {\"ranges\": [[0, 19]],"
                           " \"timeline_limit\": 1, \"required_state\": [[\"m.room.name\", \"\"]],"
                           " \"filters\": {\"is_dm\": true}}}, \"room_subscriptions\": {\"!r:h\":"
                           " {\"timeline_limit\": 20, \"required_state\": [[\"*\", \"*\"]]}},"
                           " \"extensions\": {\"e2ee\": {\"enabled\": true}}}"),
                     0);
    ck_assert_int_eq(check("{\"lists\": []}"), -1);
    ck_assert_int_eq(check("{\"conn_id\": 3}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": 1}}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": {\"ranges\": [[5, 2]]}}}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": {\"ranges\": [[-1, 2]]}}}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": {\"ranges\": [0, 2]}}}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": {\"timeline_limit\": \"5\"}}}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": {\"required_state\": [[\"m.room.name\"]]}}}"), -1);
    ck_assert_int_eq(check("{\"lists\": {\"a\": {\"filters\": []}}}"), -1);
    ck_assert_int_eq(check("{\"room_subscriptions\": {\"!r:h\": {\"timeline_limit\": -1}}}"), -1);
    ck_assert_int_eq(check("{\"extensions\": 1}"), -1);
}
END_TEST

static bool widened(const char *before, const char *now) {
    json_error_t je;
    json_t *b = json_loads(before, 0, &je), *n = json_loads(now, 0, &je);
    bool w = ss_required_state_widened(b, n);
    json_decref(b), json_decref(n);
    return w;
}

START_TEST(test_widened) {
    const char *name = "[[\"m.room.name\", \"\"]]";
    ck_assert(!widened(name, name));
    ck_assert(!widened("[[\"m.room.topic\", \"\"], [\"m.room.name\", \"\"]]", name)); /* narrowed */
    ck_assert(widened(name, "[[\"m.room.name\", \"\"], [\"m.room.topic\", \"\"]]"));
    ck_assert(widened(name, "[[\"m.room.member\", \"$LAZY\"]]"));
    ck_assert(widened("[]", name));
    ck_assert(!widened(name, "[]"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_sliding");
    TCase *t = tcase_create("sliding_request");
    tcase_add_test(t, test_pos);
    tcase_add_test(t, test_body_shape);
    tcase_add_test(t, test_widened);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
