/* test_rooms_redact.c — the redaction algorithm, one test per version
 * difference (v1 base, v6 aliases, v8 allow, v9 authorising user, v11
 * rework, v12 create room_id). */
#include <check.h>
#include <stdlib.h>

#include "rooms_fixture.h"

/* Redact the event (text with ' for ") in version ver and compare with want. */
static void assert_redacts(const char *ver, const char *event, const char *want) {
    json_t *ev = fx_json(event), *w = fx_json(want);
    json_t *got = room_event_redact(fx_ver(ver), ev);
    ck_assert_ptr_nonnull(got);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        fprintf(stderr, "v%s: got %s\nwant %s\n", ver, g, want);
        free(g);
    }
    ck_assert(json_equal(got, w));
    json_decref(got);
    json_decref(w);
    json_decref(ev);
}

/* Every top-level key the spec names, plus ones it does not. */
#define TOP                                                                                  \
    "'event_id':'$e:x','room_id':'!r:x','sender':'@u:x','hashes':{'sha256':'h'},"            \
    "'signatures':{'x':{'ed25519:a':'s'}},'depth':3,'prev_events':[],'auth_events':[],"     \
    "'origin_server_ts':7,'origin':'x','membership':'join','prev_state':[],"                \
    "'unsigned':{'age':1},'redacts':'$t','extra':1"
#define TOP_OLD                                                                              \
    "'event_id':'$e:x','room_id':'!r:x','sender':'@u:x','hashes':{'sha256':'h'},"            \
    "'signatures':{'x':{'ed25519:a':'s'}},'depth':3,'prev_events':[],'auth_events':[],"     \
    "'origin_server_ts':7,'origin':'x','membership':'join','prev_state':[]"
#define TOP_V11                                                                              \
    "'event_id':'$e:x','room_id':'!r:x','sender':'@u:x','hashes':{'sha256':'h'},"            \
    "'signatures':{'x':{'ed25519:a':'s'}},'depth':3,'prev_events':[],'auth_events':[],"     \
    "'origin_server_ts':7"

START_TEST(top_level_keys) {
    /* v1–v10 keep origin, membership and prev_state; v11 drops them. Never
     * unsigned, redacts at the top level, or unknown keys. */
    const char *old[] = {"1", "5", "6", "9", "10"};
    for (size_t i = 0; i < 5; i++)
        assert_redacts(old[i], "{" TOP ",'type':'m.room.message','content':{'body':'x'}}",
                       "{" TOP_OLD ",'type':'m.room.message','content':{}}");
    assert_redacts("11", "{" TOP ",'type':'m.room.message','content':{'body':'x'}}",
                   "{" TOP_V11 ",'type':'m.room.message','content':{}}");
    assert_redacts("12", "{" TOP ",'type':'m.room.message','state_key':'','content':{}}",
                   "{" TOP_V11 ",'type':'m.room.message','state_key':'','content':{}}");
}
END_TEST

START_TEST(member) {
    const char *c = "{'type':'m.room.member','content':{'membership':'join','displayname':'U',"
                    "'join_authorised_via_users_server':'@a:x','third_party_invite':{'display_name':"
                    "'d','signed':{'mxid':'@u:x','token':'t'}}}}";
    assert_redacts("1", c, "{'type':'m.room.member','content':{'membership':'join'}}");
    /* v8 introduced the key but forgot to keep it; v9 keeps it. */
    assert_redacts("8", c, "{'type':'m.room.member','content':{'membership':'join'}}");
    assert_redacts("9", c,
                   "{'type':'m.room.member','content':{'membership':'join',"
                   "'join_authorised_via_users_server':'@a:x'}}");
    /* v11 also keeps third_party_invite.signed (and nothing else of it). */
    assert_redacts("11", c,
                   "{'type':'m.room.member','content':{'membership':'join',"
                   "'join_authorised_via_users_server':'@a:x','third_party_invite':{'signed':"
                   "{'mxid':'@u:x','token':'t'}}}}");
    assert_redacts("11", "{'type':'m.room.member','content':{'third_party_invite':{'a':1}}}",
                   "{'type':'m.room.member','content':{'third_party_invite':{}}}");
    assert_redacts("11", "{'type':'m.room.member','content':{'third_party_invite':5}}",
                   "{'type':'m.room.member','content':{}}");
}
END_TEST

START_TEST(create) {
    const char *c = "{'type':'m.room.create','content':{'creator':'@u:x','room_version':'1',"
                    "'m.federate':false,'predecessor':{'room_id':'!o:x'}}}";
    assert_redacts("1", c, "{'type':'m.room.create','content':{'creator':'@u:x'}}");
    assert_redacts("10", c, "{'type':'m.room.create','content':{'creator':'@u:x'}}");
    /* v11 keeps the create event's whole content. */
    assert_redacts("11", c,
                   "{'type':'m.room.create','content':{'creator':'@u:x','room_version':'1',"
                   "'m.federate':false,'predecessor':{'room_id':'!o:x'}}}");
    /* v12: a create event's room ID is derived, so room_id never survives. */
    assert_redacts("12",
                   "{'type':'m.room.create','room_id':'!r:x','state_key':'','content':"
                   "{'additional_creators':['@b:x']}}",
                   "{'type':'m.room.create','state_key':'','content':{'additional_creators':"
                   "['@b:x']}}");
    assert_redacts("11", "{'type':'m.room.create','room_id':'!r:x','content':{}}",
                   "{'type':'m.room.create','room_id':'!r:x','content':{}}");
}
END_TEST

START_TEST(join_rules) {
    const char *c = "{'type':'m.room.join_rules','content':{'join_rule':'restricted','allow':"
                    "[{'type':'m.room_membership','room_id':'!s:x'}],'other':1}}";
    assert_redacts("7", c, "{'type':'m.room.join_rules','content':{'join_rule':'restricted'}}");
    assert_redacts("8", c,
                   "{'type':'m.room.join_rules','content':{'join_rule':'restricted','allow':"
                   "[{'type':'m.room_membership','room_id':'!s:x'}]}}");
    assert_redacts("12", c,
                   "{'type':'m.room.join_rules','content':{'join_rule':'restricted','allow':"
                   "[{'type':'m.room_membership','room_id':'!s:x'}]}}");
}
END_TEST

START_TEST(power_levels) {
    const char *c = "{'type':'m.room.power_levels','content':{'ban':1,'events':{'a':1},"
                    "'events_default':2,'kick':3,'redact':4,'state_default':5,'users':{'@u:x':6},"
                    "'users_default':7,'invite':8,'notifications':{'room':9},'x':10}}";
    const char *kept = "'ban':1,'events':{'a':1},'events_default':2,'kick':3,'redact':4,"
                       "'state_default':5,'users':{'@u:x':6},'users_default':7";
    char want[512];
    snprintf(want, sizeof want, "{'type':'m.room.power_levels','content':{%s}}", kept);
    assert_redacts("1", c, want);
    assert_redacts("10", c, want);
    /* v11 keeps invite too; notifications are still redacted. */
    snprintf(want, sizeof want, "{'type':'m.room.power_levels','content':{%s,'invite':8}}", kept);
    assert_redacts("11", c, want);
}
END_TEST

START_TEST(aliases) {
    const char *c = "{'type':'m.room.aliases','state_key':'x','content':{'aliases':['#a:x'],'o':1}}";
    assert_redacts("1", c, "{'type':'m.room.aliases','state_key':'x','content':{'aliases':['#a:x']}}");
    assert_redacts("5", c, "{'type':'m.room.aliases','state_key':'x','content':{'aliases':['#a:x']}}");
    /* v6 removed the special meaning of aliases. */
    assert_redacts("6", c, "{'type':'m.room.aliases','state_key':'x','content':{}}");
}
END_TEST

START_TEST(history_visibility_and_redaction) {
    assert_redacts("1",
                   "{'type':'m.room.history_visibility','content':{'history_visibility':'shared',"
                   "'x':1}}",
                   "{'type':'m.room.history_visibility','content':{'history_visibility':'shared'}}");
    const char *r = "{'type':'m.room.redaction','redacts':'$t','content':{'redacts':'$t','reason':'r'}}";
    assert_redacts("10", r, "{'type':'m.room.redaction','content':{}}");
    assert_redacts("11", r, "{'type':'m.room.redaction','content':{'redacts':'$t'}}");
}
END_TEST

START_TEST(odd_input) {
    /* Content that is not an object becomes {}; no type, no special keys. */
    assert_redacts("10", "{'type':'m.room.member','content':'x'}", "{'type':'m.room.member','content':{}}");
    assert_redacts("10", "{'content':{'membership':'join'}}", "{'content':{}}");
    assert_redacts("10", "{'type':'m.room.member'}", "{'type':'m.room.member','content':{}}");
    json_t *arr = json_array();
    ck_assert_ptr_null(room_event_redact(fx_ver("10"), arr));
    ck_assert_ptr_null(room_event_redact(NULL, arr));
    json_decref(arr);
}
END_TEST

START_TEST(result_is_a_copy) {
    json_t *ev = fx_json("{'type':'m.room.member','signatures':{'x':{}},'content':{'membership':'join'}}");
    json_t *red = room_event_redact(fx_ver("10"), ev);
    json_object_set_new(json_object_get(red, "signatures"), "y", json_object());
    json_object_set_new(json_object_get(red, "content"), "membership", json_string("leave"));
    ck_assert_ptr_null(json_object_get(json_object_get(ev, "signatures"), "y"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "content"), "membership")),
                     "join");
    json_decref(red);
    json_decref(ev);
}
END_TEST

START_TEST(idempotent_all_versions) {
    /* Redacting a redacted event changes nothing, in every version. */
    const char *c = "{" TOP ",'type':'m.room.member','state_key':'@u:x','content':{'membership':"
                    "'join','join_authorised_via_users_server':'@a:x','third_party_invite':"
                    "{'signed':{'token':'t'},'x':1},'displayname':'d'}}";
    for (const room_version *v = room_versions_all(); v->id; v++) {
        json_t *ev = fx_json(c);
        json_t *once = room_event_redact(v, ev), *twice = room_event_redact(v, once);
        ck_assert(json_equal(once, twice));
        json_decref(once);
        json_decref(twice);
        json_decref(ev);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_redact");
    TCase *tc = tcase_create("redact");
    tcase_add_test(tc, top_level_keys);
    tcase_add_test(tc, member);
    tcase_add_test(tc, create);
    tcase_add_test(tc, join_rules);
    tcase_add_test(tc, power_levels);
    tcase_add_test(tc, aliases);
    tcase_add_test(tc, history_visibility_and_redaction);
    tcase_add_test(tc, odd_input);
    tcase_add_test(tc, result_is_a_copy);
    tcase_add_test(tc, idempotent_all_versions);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
