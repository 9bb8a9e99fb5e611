/* test_client_filters.c — the filter schema, parsing, matching (globs,
 * not_* winning, contains_url), limits and event_fields projection. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/filters.h"

/* JSON from a literal written with ' for ". */
static json_t *J(const char *text) {
    char *s = strdup(text);
    for (char *p = s; *p; p++)
        if (*p == '\'') *p = '"';
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    free(s);
    ck_assert_msg(j != NULL, "bad fixture JSON: %s", e.text);
    return j;
}

static client_filter *parse_ok(const char *text) {
    json_t *j = J(text);
    hs_err err = {0};
    client_filter *f = client_filter_parse(j, &err);
    json_decref(j);
    ck_assert_msg(f != NULL, "%s", err.msg);
    return f;
}

static void parse_fails(const char *text, const char *want) {
    json_t *j = J(text);
    hs_err err = {0};
    client_filter *f = client_filter_parse(j, &err);
    json_decref(j);
    ck_assert_msg(f == NULL, "accepted %s", text);
    ck_assert_int_eq(err.status, 400);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    ck_assert_msg(strstr(err.msg, want), "'%s' lacks '%s'", err.msg, want);
}

static bool allowed(const client_filter_part *p, const char *event) {
    json_t *e = J(event);
    bool ok = client_filter_event_allowed(p, e);
    json_decref(e);
    return ok;
}

START_TEST(test_glob) {
    ck_assert(client_filter_glob("m.room.message", "m.room.message"));
    ck_assert(!client_filter_glob("m.room.message", "m.room.messages"));
    ck_assert(!client_filter_glob("m.room.message", "m.room.messag"));
    ck_assert(client_filter_glob("*", ""));
    ck_assert(client_filter_glob("*", "anything"));
    ck_assert(client_filter_glob("m.*", "m.room.member"));
    ck_assert(client_filter_glob("m.*", "m."));
    ck_assert(!client_filter_glob("m.*", "m"));
    ck_assert(!client_filter_glob("m.*", "org.m.x"));
    ck_assert(client_filter_glob("*.message", "m.room.message"));
    ck_assert(client_filter_glob("m.*.message", "m.room.message"));
    ck_assert(!client_filter_glob("m.*.message", "m.room.member"));
    ck_assert(client_filter_glob("a*b*c", "aXXbYYbZZc"));
    ck_assert(!client_filter_glob("a*b*c", "aXXbYYbZZ"));
    ck_assert(client_filter_glob("**", "x"));
    ck_assert(client_filter_glob("", ""));
    ck_assert(!client_filter_glob("", "x"));
    /* '.' and '?' are literal: only '*' is special */
    ck_assert(!client_filter_glob("m?room", "mxroom"));
    ck_assert(!client_filter_glob("m.room", "mxroom"));
}
END_TEST

START_TEST(test_check_accepts_the_spec_shapes) {
    client_filter *f = parse_ok(
        "{'event_fields': ['type', 'content.body'], 'event_format': 'federation',"
        " 'presence': {'limit': 5, 'types': ['m.presence'], 'not_senders': ['@a:b']},"
        " 'account_data': {'not_types': ['m.push_rules']},"
        " 'room': {'rooms': ['!r:s', '!v12'], 'not_rooms': ['!x:s'], 'include_leave': true,"
        "   'timeline': {'limit': 30, 'contains_url': true, 'unread_thread_notifications': true},"
        "   'state': {'lazy_load_members': true, 'include_redundant_members': true},"
        "   'ephemeral': {'types': ['m.typing']}, 'account_data': {'types': []}},"
        " 'org.example.new': 1}");
    ck_assert(f->federation_format && f->include_leave);
    ck_assert_int_eq(f->presence.limit, 5);
    ck_assert_int_eq(f->timeline.limit, 30);
    ck_assert_int_eq(f->timeline.contains_url, 1);
    ck_assert_int_eq(f->state.contains_url, -1);
    ck_assert(f->timeline.unread_thread_notifications);
    ck_assert(f->state.lazy_load_members && f->state.include_redundant_members);
    ck_assert(!f->timeline.lazy_load_members);
    ck_assert(f->room.rooms.given && f->room.rooms.n == 2);
    ck_assert_str_eq(f->room.rooms.v[1], "!v12");
    ck_assert(!f->room.types.given);
    ck_assert(f->event_fields.given && f->event_fields.n == 2);
    ck_assert(f->room_account_data.types.given && f->room_account_data.types.n == 0);
    ck_assert(client_filter_blocks_all(&f->room_account_data));
    ck_assert(!client_filter_blocks_all(&f->timeline));
    client_filter_free(f);

    f = parse_ok("{}");
    ck_assert(!f->federation_format && !f->include_leave && !f->event_fields.given);
    ck_assert_int_eq(f->timeline.limit, -1);
    ck_assert_int_eq(client_filter_limit(&f->timeline, 10, 100), 10);
    client_filter_free(f);
}
END_TEST

START_TEST(test_check_refuses_and_names_the_key) {
    parse_fails("[]", "a filter must be an object");
    parse_fails("{'event_fields': 'type'}", "event_fields must be an array of strings");
    parse_fails("{'event_format': 'raw'}", "event_format must be");
    parse_fails("{'presence': {'limit': -3}}", "presence.limit must be an integer, 0 or more");
    parse_fails("{'presence': {'limit': 2.5}}", "presence.limit");
    parse_fails("{'presence': {'limit': true}}", "presence.limit");
    parse_fails("{'account_data': {'types': [1]}}", "account_data.types must be an array");
    parse_fails("{'presence': {'senders': ['bob']}}", "presence.senders must hold user IDs");
    parse_fails("{'presence': {'senders': ['@bob:']}}", "presence.senders must hold user IDs");
    parse_fails("{'room': {'rooms': ['#a:b']}}", "room.rooms must hold room IDs");
    parse_fails("{'room': {'include_leave': 1}}", "room.include_leave must be a boolean");
    parse_fails("{'room': {'timeline': {'limit': -1}}}", "room.timeline.limit");
    parse_fails("{'room': {'state': {'lazy_load_members': 'yes'}}}",
                "room.state.lazy_load_members must be a boolean");
    parse_fails("{'room': {'ephemeral': {'not_rooms': ['x']}}}", "room.ephemeral.not_rooms");
    parse_fails("{'room': {'account_data': 3}}", "room.account_data must be an object");
    parse_fails("{'room': 'all'}", "room must be an object");
    /* EventFilter (presence, account_data) has no rooms: unknown keys pass */
    client_filter *f = parse_ok("{'presence': {'rooms': 'whatever'}}");
    client_filter_free(f);
}
END_TEST

START_TEST(test_event_matching) {
    client_filter *f = parse_ok(
        "{'room': {'timeline': {'types': ['m.room.*', 'org.example.exact'],"
        "  'not_types': ['m.room.member'], 'senders': ['@a:s', '@b:s'], 'not_senders': ['@b:s'],"
        "  'rooms': ['!r:s', '!q:s'], 'not_rooms': ['!q:s']}}}");
    const client_filter_part *t = &f->timeline;
    ck_assert(allowed(t, "{'type': 'm.room.message', 'sender': '@a:s'}"));
    ck_assert(allowed(t, "{'type': 'org.example.exact', 'sender': '@a:s', 'room_id': '!r:s'}"));
    ck_assert(!allowed(t, "{'type': 'org.example.exactly', 'sender': '@a:s'}"));
    /* not_types wins over a types glob */
    ck_assert(!allowed(t, "{'type': 'm.room.member', 'sender': '@a:s'}"));
    /* not_senders wins over senders; others are not in senders */
    ck_assert(!allowed(t, "{'type': 'm.room.message', 'sender': '@b:s'}"));
    ck_assert(!allowed(t, "{'type': 'm.room.message', 'sender': '@c:s'}"));
    ck_assert(!allowed(t, "{'type': 'm.room.message'}"));
    ck_assert(!allowed(t, "{'sender': '@a:s'}"));
    /* room_id, when the event has one */
    ck_assert(!allowed(t, "{'type': 'm.room.message', 'sender': '@a:s', 'room_id': '!q:s'}"));
    ck_assert(!allowed(t, "{'type': 'm.room.message', 'sender': '@a:s', 'room_id': '!z:s'}"));
    ck_assert(client_filter_room_allowed(t, "!r:s"));
    ck_assert(!client_filter_room_allowed(t, "!q:s"));
    ck_assert(!client_filter_room_allowed(t, "!z:s"));
    /* the empty part lets everything through */
    ck_assert(allowed(&f->state, "{'type': 'x'}"));
    ck_assert(client_filter_room_allowed(&f->room, "!anything"));
    client_filter_free(f);
}
END_TEST

START_TEST(test_contains_url) {
    client_filter *f = parse_ok(
        "{'room': {'timeline': {'contains_url': true}, 'state': {'contains_url': false}}}");
    const char *with = "{'type': 'm.room.message', 'content': {'url': 'mxc://a/b'}}";
    const char *without = "{'type': 'm.room.message', 'content': {'body': 'hi'}}";
    const char *not_string = "{'type': 'm.room.message', 'content': {'url': 5}}";
    ck_assert(allowed(&f->timeline, with));
    ck_assert(!allowed(&f->timeline, without));
    ck_assert(!allowed(&f->timeline, not_string));
    ck_assert(!allowed(&f->state, with));
    ck_assert(allowed(&f->state, without));
    ck_assert(allowed(&f->state, not_string));
    ck_assert(allowed(&f->ephemeral, with) && allowed(&f->ephemeral, without));
    client_filter_free(f);
}
END_TEST

START_TEST(test_blocks_all_and_limits) {
    client_filter *f = parse_ok(
        "{'presence': {'types': []}, 'account_data': {'not_types': ['*']},"
        " 'room': {'rooms': [], 'timeline': {'limit': 100000},"
        "   'state': {'senders': []}, 'ephemeral': {'rooms': []}}}");
    ck_assert(client_filter_blocks_all(&f->presence));
    ck_assert(client_filter_blocks_all(&f->account_data));
    ck_assert(client_filter_blocks_all(&f->room));
    ck_assert(client_filter_blocks_all(&f->state));
    ck_assert(client_filter_blocks_all(&f->ephemeral));
    ck_assert(!client_filter_blocks_all(&f->timeline));
    /* "*" in not_types really excludes every type */
    ck_assert(!allowed(&f->account_data, "{'type': 'm.direct'}"));
    ck_assert_int_eq(client_filter_limit(&f->timeline, 10, 1000), 1000);
    ck_assert_int_eq(client_filter_limit(&f->state, 10, 1000), 10);
    ck_assert_int_eq(client_filter_limit(NULL, 20, 50), 20);
    client_filter_free(f);
    /* 0 is a limit (an empty timeline, as Synapse takes it), not "none". */
    f = parse_ok("{'room': {'timeline': {'limit': 0}}}");
    ck_assert_int_eq(client_filter_limit(&f->timeline, 10, 1000), 0);
    client_filter_free(f);
    f = parse_ok("{'room': {'timeline': {'limit': 9007199254740991}}}");
    ck_assert_int_eq(client_filter_limit(&f->timeline, 10, 500), 500);
    client_filter_free(f);
}
END_TEST

START_TEST(test_event_fields_projection) {
    client_filter *f = parse_ok(
        "{'event_fields': ['type', 'content.body', 'content.m\\\\.relates_to.rel_type',"
        " 'content.a\\\\\\\\b', 'unsigned.missing', 'sender.not_an_object', 'content.info.w']}");
    json_t *ev = J("{'type': 'm.room.message', 'sender': '@a:s', 'event_id': '$e',"
                   " 'content': {'body': 'hi', 'msgtype': 'm.text', 'a\\\\b': 1,"
                   "  'm.relates_to': {'rel_type': 'm.thread', 'event_id': '$root'},"
                   "  'info': {'w': 3, 'h': 4}}}");
    json_t *got = client_filter_project(f, ev);
    json_t *want = J("{'type': 'm.room.message', 'content': {'body': 'hi', 'a\\\\b': 1,"
                     " 'm.relates_to': {'rel_type': 'm.thread'}, 'info': {'w': 3}}}");
    char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
    ck_assert_str_eq(g, w);
    free(g), free(w);
    json_decref(got), json_decref(want);
    client_filter_free(f);

    /* no event_fields: the same event back, another reference */
    f = parse_ok("{}");
    got = client_filter_project(f, ev);
    ck_assert_ptr_eq(got, ev);
    json_decref(got);
    got = client_filter_project(NULL, ev);
    ck_assert_ptr_eq(got, ev);
    json_decref(got);
    client_filter_free(f);
    json_decref(ev);
}
END_TEST

START_TEST(test_load_inline_and_default) {
    hs_err err = {0};
    /* neither touches the database */
    client_filter *f = client_filter_load(NULL, "@a:s", NULL, &err);
    ck_assert_ptr_nonnull(f);
    ck_assert(!f->timeline.types.given);
    client_filter_free(f);
    f = client_filter_load(NULL, "@a:s", "{\"room\":{\"timeline\":{\"limit\":3}}}", &err);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(client_filter_limit(&f->timeline, 10, 100), 3);
    client_filter_free(f);
    f = client_filter_load(NULL, "@a:s", "{\"room\":", &err);
    ck_assert_ptr_null(f);
    ck_assert_str_eq(err.errcode, "M_NOT_JSON");
    f = client_filter_load(NULL, "@a:s", "{\"room\":{\"timeline\":{\"limit\":-1}}}", &err);
    ck_assert_ptr_null(f);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
}
END_TEST

START_TEST(test_room_event_filter_param) {
    hs_err err = {0};
    client_filter_part *p = client_room_event_filter_load(
        "{\"types\":[\"m.room.message\"],\"lazy_load_members\":true,\"limit\":4,"
        "\"not_rooms\":[\"!x:s\"]}", &err);
    ck_assert_ptr_nonnull(p);
    ck_assert(p->lazy_load_members);
    ck_assert_int_eq(client_filter_limit(p, 10, 100), 4);
    ck_assert(allowed(p, "{'type': 'm.room.message'}"));
    ck_assert(!allowed(p, "{'type': 'm.room.member'}"));
    ck_assert(!client_filter_room_allowed(p, "!x:s"));
    client_filter_part_free(p);
    p = client_room_event_filter_load(NULL, &err);
    ck_assert_ptr_nonnull(p);
    ck_assert(allowed(p, "{'type': 'anything'}"));
    client_filter_part_free(p);
    ck_assert_ptr_null(client_room_event_filter_load("[1]", &err));
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    ck_assert_ptr_null(client_room_event_filter_load("{\"limit\":\"5\"}", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "filter.limit"));
    ck_assert_ptr_null(client_room_event_filter_load("nope", &err));
    ck_assert_str_eq(err.errcode, "M_NOT_JSON");
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_filters");
    TCase *t = tcase_create("filters");
    tcase_add_test(t, test_glob);
    tcase_add_test(t, test_check_accepts_the_spec_shapes);
    tcase_add_test(t, test_check_refuses_and_names_the_key);
    tcase_add_test(t, test_event_matching);
    tcase_add_test(t, test_contains_url);
    tcase_add_test(t, test_blocks_all_and_limits);
    tcase_add_test(t, test_event_fields_projection);
    tcase_add_test(t, test_load_inline_and_default);
    tcase_add_test(t, test_room_event_filter_param);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
