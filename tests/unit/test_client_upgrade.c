/* test_client_upgrade.c — what a room upgrade carries over: power levels
 * (fix-up, the upgrader's temporary raise, v12 creators both ways), the
 * old room's restriction, alias splitting, the create content and the
 * additional_creators check. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/room_upgrade.h"

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

static void assert_json(json_t *got, const char *want_text) {
    json_t *want = J(want_text);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    char *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    ck_assert_msg(json_equal(got, want), "got %s, want %s", g, w);
    free(g), free(w);
    json_decref(want);
}

static long long user_level(json_t *pl, const char *user) {
    json_t *v = json_object_get(json_object_get(pl, "users"), user);
    return v ? json_integer_value(v) : -1;
}

START_TEST(test_fixup) {
    json_t *pl = J("{'ban': '60', 'kick': 'lots', 'invite': 0, 'users': {'@a:x': '100', '@b:x': []},"
                   " 'events': {'m.room.name': '50'}, 'notifications': {'room': 50}, 'other': 'kept'}");
    json_t *f = upgrade_pl_fixup(pl);
    assert_json(f, "{'ban': 60, 'invite': 0, 'users': {'@a:x': 100}, 'events': {'m.room.name': 50},"
                   " 'notifications': {'room': 50}, 'other': 'kept'}");
    json_decref(f);
    json_decref(pl);
    f = upgrade_pl_fixup(NULL);
    assert_json(f, "{}");
    json_decref(f);
}
END_TEST

START_TEST(test_temporary_raise) {
    const room_version *v10 = room_version_get("10"), *v11 = room_version_get("11");
    json_t *old = J("{'users': {'@a:x': 100}, 'state_default': 50, 'ban': 50,"
                    " 'events': {'m.room.server_acl': 150}}");
    json_t *initial, *final;
    upgrade_power_levels(old, v10, v11, "@a:x", NULL, NULL, &initial, &final);
    ck_assert_int_eq(user_level(initial, "@a:x"), 150);
    ck_assert_int_eq(user_level(final, "@a:x"), 100);
    json_decref(initial), json_decref(final);
    /* no raise when already strong enough: the two are equal */
    json_t *strong = J("{'users': {'@a:x': 100}, 'events': {'m.room.name': 50}}");
    upgrade_power_levels(strong, v10, v11, "@a:x", NULL, NULL, &initial, &final);
    ck_assert(json_equal(initial, final));
    json_decref(initial), json_decref(final), json_decref(strong);
    /* users_default counts when the upgrader is not listed */
    json_t *dflt = J("{'users_default': 60, 'state_default': 60, 'ban': 10}");
    upgrade_power_levels(dflt, v10, v11, "@a:x", NULL, NULL, &initial, &final);
    ck_assert(json_equal(initial, final));
    json_decref(initial), json_decref(final), json_decref(dflt);
    /* no power levels at all: the upgrader gets 100 */
    upgrade_power_levels(NULL, v10, v11, "@a:x", NULL, NULL, &initial, &final);
    ck_assert_int_eq(user_level(final, "@a:x"), 100);
    json_decref(initial), json_decref(final), json_decref(old);
}
END_TEST

START_TEST(test_v12_creators) {
    const room_version *v11 = room_version_get("11"), *v12 = room_version_get("12");
    json_t *initial, *final;
    /* into v12: the creators leave the users map, others stay */
    json_t *old = J("{'users': {'@a:x': 100, '@b:x': 100, '@c:x': 50}}");
    json_t *extra = J("['@b:x']");
    upgrade_power_levels(old, v11, v12, "@a:x", NULL, extra, &initial, &final);
    assert_json(json_object_get(final, "users"), "{'@c:x': 50}");
    ck_assert(json_equal(initial, final));
    json_decref(initial), json_decref(final), json_decref(old), json_decref(extra);
    /* out of v12: the old creators get a number above everything needed */
    json_t *hydra = J("{'users': {'@c:x': 50}, 'events': {'m.room.tombstone': 150}}");
    json_t *creators = J("['@a:x', '@b:x']");
    upgrade_power_levels(hydra, v12, v11, "@a:x", creators, NULL, &initial, &final);
    ck_assert_int_eq(user_level(final, "@a:x"), 150);
    ck_assert_int_eq(user_level(final, "@b:x"), 150);
    ck_assert_int_eq(user_level(final, "@c:x"), 50);
    ck_assert(json_equal(initial, final));
    json_decref(initial), json_decref(final), json_decref(hydra);
    json_t *low = J("{'events': {'m.room.name': 50}}");
    upgrade_power_levels(low, v12, v11, "@a:x", creators, NULL, &initial, &final);
    ck_assert_int_eq(user_level(final, "@a:x"), 100);
    json_decref(initial), json_decref(final), json_decref(low), json_decref(creators);
}
END_TEST

START_TEST(test_restricted) {
    json_t *pl = J("{'events_default': 0, 'invite': 0, 'users_default': 0}");
    json_t *r = upgrade_restricted_pl(pl);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "events_default")), 50);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "invite")), 50);
    json_decref(r), json_decref(pl);
    pl = J("{'users_default': 70, 'invite': 80}");
    r = upgrade_restricted_pl(pl);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "events_default")), 71);
    ck_assert_int_eq(json_integer_value(json_object_get(r, "invite")), 80);
    json_decref(r), json_decref(pl);
    pl = J("{'events_default': 50, 'invite': 100}");
    ck_assert_ptr_null(upgrade_restricted_pl(pl));         /* already closed */
    json_decref(pl);
    ck_assert_ptr_null(upgrade_restricted_pl(NULL));
}
END_TEST

START_TEST(test_aliases) {
    json_t *c = J("{'alias': '#a:here', 'alt_aliases': ['#b:here', '#c:there']}"), *n, *o;
    upgrade_split_aliases(c, "here", &n, &o);
    assert_json(n, "{'alias': '#a:here', 'alt_aliases': ['#b:here']}");
    assert_json(o, "{'alt_aliases': ['#c:there']}");
    json_decref(n), json_decref(o), json_decref(c);
    c = J("{'alias': '#x:there'}");
    upgrade_split_aliases(c, "here", &n, &o);
    ck_assert_ptr_null(n);
    assert_json(o, "{'alias': '#x:there'}");
    json_decref(o), json_decref(c);
    /* a port in the server name is part of it */
    c = J("{'alias': '#a:here:8448'}");
    upgrade_split_aliases(c, "here", &n, &o);
    ck_assert_ptr_null(n);
    json_decref(o), json_decref(c);
}
END_TEST

START_TEST(test_create_content) {
    json_t *old = J("{'type': 'm.space', 'm.federate': false, 'creator': '@old:x'}");
    json_t *extra = J("['@b:x']");
    json_t *c = upgrade_create_content(old, "!old:x", "$tomb", room_version_get("10"), "@a:x", extra);
    assert_json(c, "{'room_version': '10', 'predecessor': {'room_id': '!old:x', 'event_id': '$tomb'},"
                   " 'type': 'm.space', 'm.federate': false, 'creator': '@a:x'}");
    json_decref(c);
    c = upgrade_create_content(old, "!old:x", NULL, room_version_get("12"), "@a:x", extra);
    assert_json(c, "{'room_version': '12', 'predecessor': {'room_id': '!old:x'}, 'type': 'm.space',"
                   " 'm.federate': false, 'additional_creators': ['@b:x']}");
    json_decref(c), json_decref(old), json_decref(extra);
}
END_TEST

START_TEST(test_check_creators) {
    hs_err err = {0};
    const char *bad[] = {"'@a:x'", "['a:x']", "['@:x']", "['@a:']", "[5]", "{}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = J(bad[i]);
        ck_assert_int_eq(upgrade_check_creators(j, &err), -1);
        ck_assert_str_eq(err.errcode, "M_BAD_JSON");
        json_decref(j);
    }
    json_t *ok = J("['@a:x', '@b:y:8448']");
    ck_assert_int_eq(upgrade_check_creators(ok, &err), 0);
    json_decref(ok);
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_upgrade");
    TCase *t = tcase_create("upgrade");
    tcase_add_test(t, test_fixup);
    tcase_add_test(t, test_temporary_raise);
    tcase_add_test(t, test_v12_creators);
    tcase_add_test(t, test_restricted);
    tcase_add_test(t, test_aliases);
    tcase_add_test(t, test_create_content);
    tcase_add_test(t, test_check_creators);
    suite_add_tcase(s, t);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
