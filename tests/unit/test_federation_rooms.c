/* test_federation_rooms.c — the pure parts of rooms across servers: server
 * ACL matching (the spec's rules and Synapse's reading of them), repeated
 * query parameters (?ver=…&ver=…, ?v=…), the /send transaction's shape and
 * limits, adding our signature to another server's event, and the stripped
 * state clients get. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/rooms_internal.h"
#include "homeserver/core/json.h"

static json_t *js(const char *text) {
    hs_err err = {0};
    json_t *j = hs_json_parse(text, strlen(text), &err);
    ck_assert_msg(j != NULL, "%s: %s", text, err.msg);
    return j;
}

START_TEST(acl_globs) {
    ck_assert(room_acl_glob("*", "anything.example"));
    ck_assert(room_acl_glob("*.example.org", "matrix.example.org"));
    ck_assert(!room_acl_glob("*.example.org", "example.org"));
    ck_assert(room_acl_glob("ma?rix.org", "matrix.org"));
    ck_assert(!room_acl_glob("ma?rix.org", "maatrix.org"));
    ck_assert(room_acl_glob("MATRIX.org", "matrix.ORG")); /* hosts know no case */
    ck_assert(room_acl_glob("a*b*c", "aXXbYYc"));
    ck_assert(!room_acl_glob("a*b*c", "aXXbYY"));
    ck_assert(room_acl_glob("[x]", "[x]")); /* brackets are not special */
    ck_assert(room_acl_glob("", ""));
    ck_assert(!room_acl_glob("", "a"));
}
END_TEST

START_TEST(acl_content) {
    json_t *acl = js("{\"allow\": [\"*\"], \"deny\": [\"evil.example\", \"*.bad.example\"]}");
    ck_assert(room_acl_content_allows(acl, "good.example"));
    ck_assert(room_acl_content_allows(acl, "good.example:8448")); /* the port does not count */
    ck_assert(!room_acl_content_allows(acl, "evil.example"));
    ck_assert(!room_acl_content_allows(acl, "evil.example:443"));
    ck_assert(!room_acl_content_allows(acl, "x.bad.example"));
    ck_assert(room_acl_content_allows(acl, "1.2.3.4")); /* IP literals allowed by default */
    ck_assert(room_acl_content_allows(acl, "[::1]:8448"));
    ck_assert(!room_acl_content_allows(acl, "not a name"));
    json_decref(acl);
    acl = js("{\"allow\": [\"*\"], \"allow_ip_literals\": false}");
    ck_assert(!room_acl_content_allows(acl, "1.2.3.4:8448"));
    ck_assert(!room_acl_content_allows(acl, "[2001:db8::1]"));
    ck_assert(room_acl_content_allows(acl, "example.org"));
    json_decref(acl);
    /* No allow list: nobody; deny beats allow; IPv6 matched with brackets. */
    acl = js("{\"deny\": []}");
    ck_assert(!room_acl_content_allows(acl, "example.org"));
    json_decref(acl);
    acl = js("{\"allow\": [\"example.org\", \"[::1]\"], \"deny\": [\"example.org\"]}");
    ck_assert(!room_acl_content_allows(acl, "example.org"));
    ck_assert(room_acl_content_allows(acl, "[::1]:1234"));
    json_decref(acl);
    /* Non-string entries are skipped, not fatal. */
    acl = js("{\"allow\": [1, null, \"*\"], \"deny\": [{}]}");
    ck_assert(room_acl_content_allows(acl, "example.org"));
    json_decref(acl);
}
END_TEST

START_TEST(query_values) {
    char *v[4];
    size_t n = fed_query_values("/x?ver=1&ver=12&other=3&ver=%31%30", "ver", v, 4);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[0], "1");
    ck_assert_str_eq(v[1], "12");
    ck_assert_str_eq(v[2], "10");
    fed_strv_free(v, n);
    n = fed_query_values("/b?v=%24ev%3Aa.example&v=a+b&limit=5", "v", v, 4);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(v[0], "$ev:a.example");
    ck_assert_str_eq(v[1], "a b");
    fed_strv_free(v, n);
    ck_assert_uint_eq(fed_query_values("/b", "v", v, 4), 0);
    ck_assert_uint_eq(fed_query_values("/b?vv=1&xv=2", "v", v, 4), 0);
    /* A bare key is an empty value; broken escapes stay as they are. */
    n = fed_query_values("/b?v&v=%zz&v=%4", "v", v, 4);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(v[0], "");
    ck_assert_str_eq(v[1], "%zz");
    ck_assert_str_eq(v[2], "%4");
    fed_strv_free(v, n);
    /* At most max. */
    n = fed_query_values("/b?v=1&v=2&v=3&v=4&v=5", "v", v, 2);
    ck_assert_uint_eq(n, 2);
    fed_strv_free(v, n);
    /* The key itself may be escaped. */
    n = fed_query_values("/b?%76=x", "v", v, 4);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(v[0], "x");
    fed_strv_free(v, n);
}
END_TEST

static int parse_txn(const char *text, const json_t **p, const json_t **e, hs_err *err) {
    json_t *j = js(text);
    int rc = fed_txn_parse(j, "a.example", p, e, err);
    json_decref(j);
    return rc;
}

static char *many(const char *item, int n, const char *key) {
    size_t cap = strlen(item) * (size_t)n + 64 + (size_t)n, w = 0;
    char *s = malloc(cap);
    w += (size_t)snprintf(s + w, cap - w, "{\"%s\": [", key);
    for (int i = 0; i < n; i++) w += (size_t)snprintf(s + w, cap - w, "%s%s", i ? "," : "", item);
    snprintf(s + w, cap - w, "]}");
    return s;
}

START_TEST(transactions) {
    const json_t *p, *e;
    hs_err err = {0};
    json_t *ok = js("{\"origin\": \"a.example\", \"origin_server_ts\": 1, \"pdus\": [{}],"
                    " \"edus\": [{\"edu_type\": \"m.typing\", \"content\": {}}]}");
    ck_assert_int_eq(fed_txn_parse(ok, "a.example", &p, &e, &err), 0);
    ck_assert_uint_eq(json_array_size(p), 1);
    ck_assert_uint_eq(json_array_size(e), 1);
    /* Another server's name as origin: refused. */
    ck_assert_int_eq(fed_txn_parse(ok, "b.example", &p, &e, &err), -1);
    ck_assert_int_eq(err.status, 403);
    ck_assert_str_eq(err.errcode, "M_FORBIDDEN");
    json_decref(ok);
    /* Absent lists: nothing to do. */
    ck_assert_int_eq(parse_txn("{}", &p, &e, &err), 0);
    ck_assert_ptr_null(p);
    ck_assert_ptr_null(e);
    const char *bad[] = {"{\"pdus\": {}}", "{\"edus\": \"x\"}", "{\"origin\": 5}", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hs_err e2 = {0};
        ck_assert_msg(parse_txn(bad[i], &p, &e, &e2) == -1, "%s", bad[i]);
        ck_assert_int_eq(e2.status, 400);
        ck_assert_str_eq(e2.errcode, "M_BAD_JSON");
    }
    /* The spec's limits: 50 PDUs, 100 EDUs. */
    char *s = many("{}", 50, "pdus");
    ck_assert_int_eq(parse_txn(s, &p, &e, &err), 0);
    free(s);
    s = many("{}", 51, "pdus");
    ck_assert_int_eq(parse_txn(s, &p, &e, &err), -1);
    free(s);
    s = many("{}", 100, "edus");
    ck_assert_int_eq(parse_txn(s, &p, &e, &err), 0);
    free(s);
    s = many("{}", 101, "edus");
    ck_assert_int_eq(parse_txn(s, &p, &e, &err), -1);
    ck_assert_int_eq(err.status, 400);
    free(s);
}
END_TEST

/* A v12 member event of a.example, then signed by b.example: both
 * signatures verify over the redacted event, and the event ID stays. */
START_TEST(signing_another_servers_event) {
    hs_err err = {0};
    const room_version *v = room_version_get("12");
    hs_signing_key ka, kb;
    ck_assert_int_eq(hs_signing_key_generate(&ka), 0);
    ck_assert_int_eq(hs_signing_key_generate(&kb), 0);
    json_t *ev = js(
        "{\"type\": \"m.room.member\", \"state_key\": \"@u:a.example\","
        " \"sender\": \"@u:a.example\", \"room_id\": \"!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
        " \"content\": {\"membership\": \"join\", \"displayname\": \"U\"},"
        " \"origin_server_ts\": 1, \"depth\": 5, \"prev_events\": [\"$p\"],"
        " \"auth_events\": [\"$a\"]}");
    ck_assert_int_eq(room_event_finish(v, ev, "a.example", &ka, &err), 0);
    char *before = room_event_compute_id(v, ev, &err);
    ck_assert_ptr_nonnull(before);
    cfg c = {.server_name = "b.example"};
    hs_server srv = {.cfg = &c, .key = kb};
    ck_assert_int_eq(fed_event_sign(&srv, v, ev, &err), 0);
    char *after = room_event_compute_id(v, ev, &err);
    ck_assert_str_eq(before, after);
    json_t *red = room_event_redact(v, ev);
    ck_assert_int_eq(hs_json_verify(red, "a.example", ka.key_id, ka.pk, &err), 0);
    ck_assert_int_eq(hs_json_verify(red, "b.example", kb.key_id, kb.pk, &err), 0);
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), 0);
    /* Signing again replaces our signature, keeps theirs. */
    ck_assert_int_eq(fed_event_sign(&srv, v, ev, &err), 0);
    ck_assert_uint_eq(json_object_size(json_object_get(ev, "signatures")), 2);
    json_decref(red);
    free(before);
    free(after);
    json_decref(ev);
    hs_signing_key_wipe(&ka);
    hs_signing_key_wipe(&kb);
}
END_TEST

START_TEST(stripped_for_clients) {
    json_t *pdus = js("[{\"type\": \"m.room.name\", \"state_key\": \"\", \"sender\": \"@a:x\","
                      "  \"content\": {\"name\": \"N\"}, \"depth\": 3, \"signatures\": {}},"
                      " {\"type\": \"m.room.topic\", \"sender\": \"@a:x\", \"content\": {}},"
                      " {\"type\": 5, \"state_key\": \"\", \"sender\": \"@a:x\", \"content\": {}},"
                      " \"not an event\"]");
    json_t *out = fed_strip_for_clients(pdus);
    json_t *want = js("[{\"type\": \"m.room.name\", \"state_key\": \"\", \"sender\": \"@a:x\","
                      "  \"content\": {\"name\": \"N\"}}]");
    ck_assert(json_equal(out, want));
    json_decref(out);
    json_decref(want);
    json_decref(pdus);
}
END_TEST

START_TEST(ids) {
    ck_assert_str_eq(fed_id_domain("@u:a.example:8448"), "a.example:8448");
    ck_assert_str_eq(fed_id_domain("$opaque"), "");
    ck_assert(fed_user_of("@u:a.example", "a.example"));
    ck_assert(!fed_user_of("@u:a.example", "b.example"));
    ck_assert(!fed_user_of("u:a.example", "a.example"));
    ck_assert(!fed_user_of(NULL, "a.example"));
    char *p = fed_path2("/_matrix/federation/v1/make_join", "!r:a b", "@u:x/y");
    ck_assert_str_eq(p, "/_matrix/federation/v1/make_join/%21r%3Aa%20b/%40u%3Ax%2Fy");
    free(p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("federation_rooms");
    TCase *t = tcase_create("rooms");
    tcase_add_test(t, acl_globs);
    tcase_add_test(t, acl_content);
    tcase_add_test(t, query_values);
    tcase_add_test(t, transactions);
    tcase_add_test(t, signing_another_servers_event);
    tcase_add_test(t, stripped_for_clients);
    tcase_add_test(t, ids);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
