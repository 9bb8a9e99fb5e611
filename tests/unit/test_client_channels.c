/* test_client_channels.c — the pure parts of channels (channels.h):
 * room_list_publication_rules matching, where createRoom's default
 * m.room.encryption goes and when, and the /versions flags Element reads. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/channels.h"

static cfg conf;
static hs_server srv = {.cfg = &conf};

static json_t *J(const char *s) {
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    ck_assert_msg(j, "bad JSON in test: %s", e.text);
    return j;
}

static void setup(void) {
    memset(&conf, 0, sizeof conf);
    conf.server_name = "example.org";
    conf.encryption_default = CFG_ENCRYPT_INVITE;
}

/* The protos createRoom builds: create, join, power levels, then the rest. */
#define HEAD                                                                                   \
    "[{\"type\": \"m.room.create\", \"state_key\": \"\", \"content\": {}},"                  \
    " {\"type\": \"m.room.member\", \"state_key\": \"@a:example.org\","                       \
    "  \"content\": {\"membership\": \"join\"}},"                                              \
    " {\"type\": \"m.room.power_levels\", \"state_key\": \"\", \"content\": {}},"
#define RULE(r) "{\"type\": \"m.room.join_rules\", \"state_key\": \"\", \"content\": {\"join_rule\": \"" r "\"}}"
#define NAME "{\"type\": \"m.room.name\", \"state_key\": \"\", \"content\": {\"name\": \"n\"}}"
#define TOPIC "{\"type\": \"m.room.topic\", \"state_key\": \"\", \"content\": {\"topic\": \"t\"}}"
#define AVATAR "{\"type\": \"m.room.avatar\", \"state_key\": \"\", \"content\": {\"url\": \"mxc://a/b\"}}"
#define INVITE "{\"type\": \"m.room.member\", \"state_key\": \"@b:elsewhere.org\"," \
               " \"content\": {\"membership\": \"invite\"}}"
#define ENC(c) "{\"type\": \"m.room.encryption\", \"state_key\": \"\", \"content\": " c "}"

/* The index of the m.room.encryption proto, -1 if none (and how many). */
static int enc_at(const json_t *protos, int *count) {
    int at = -1;
    *count = 0;
    for (size_t i = 0; i < json_array_size(protos); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(protos, i), "type"));
        if (!strcmp(t, "m.room.encryption")) at = (int)i, (*count)++;
    }
    return at;
}

static int run_hook(const char *preset, const char *body, const char *protos, int *at, hs_err *err) {
    json_t *b = J(body), *p = J(protos);
    int count, rc = client_channel_create_hook(&srv, preset, b, p, err);
    *at = enc_at(p, &count);
    if (rc == 0 && count > 1) *at = -100;
    if (*at >= 0) {
        const json_t *e = json_array_get(p, (size_t)*at);
        ck_assert_str_eq(json_string_value(json_object_get(e, "state_key")), "");
        const char *alg = json_string_value(json_object_get(json_object_get(e, "content"), "algorithm"));
        if (alg && strcmp(alg, "x.y")) /* x.y: the client's own, kept */
            ck_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "content"), "algorithm")),
                             CLIENT_MEGOLM);
    }
    json_decref(b);
    json_decref(p);
    return rc;
}

START_TEST(encryption_default_placement) {
    hs_err err = {0};
    int at;
    /* After initial_state (the avatar), before name, topic and invites. */
    ck_assert_int_eq(run_hook("private_chat", "{\"name\": \"n\", \"topic\": \"t\"}",
                              HEAD RULE("invite") "," AVATAR "," NAME "," TOPIC "," INVITE "]", &at, &err), 0);
    ck_assert_int_eq(at, 5);
    ck_assert_int_eq(run_hook("private_chat", "{\"topic\": \"t\"}",
                              HEAD RULE("invite") "," TOPIC "," INVITE "]", &at, &err), 0);
    ck_assert_int_eq(at, 4);
    ck_assert_int_eq(run_hook("private_chat", "{}", HEAD RULE("invite") "," INVITE "]", &at, &err), 0);
    ck_assert_int_eq(at, 4);
    ck_assert_int_eq(run_hook("private_chat", "{}", HEAD RULE("invite") "]", &at, &err), 0);
    ck_assert_int_eq(at, 4);
    /* A name in initial_state and one in the request: before the request's. */
    ck_assert_int_eq(run_hook("private_chat", "{\"name\": \"n\"}",
                              HEAD RULE("invite") "," NAME "," NAME "]", &at, &err), 0);
    ck_assert_int_eq(at, 5);
}
END_TEST

START_TEST(encryption_default_when) {
    hs_err err = {0};
    int at;
    /* invite: the private presets, not public_chat */
    ck_assert_int_eq(run_hook("trusted_private_chat", "{}", HEAD RULE("invite") "]", &at, &err), 0);
    ck_assert_int_ge(at, 0);
    ck_assert_int_eq(run_hook("public_chat", "{}", HEAD RULE("public") "]", &at, &err), 0);
    ck_assert_int_eq(at, -1);
    /* the client's own choice is kept as is, never doubled */
    ck_assert_int_eq(run_hook("private_chat", "{}",
                              HEAD RULE("invite") "," ENC("{\"algorithm\": \"x.y\"}") "]", &at, &err), 0);
    ck_assert_int_eq(at, 4);
    conf.encryption_default = CFG_ENCRYPT_OFF;
    ck_assert_int_eq(run_hook("private_chat", "{}", HEAD RULE("invite") "]", &at, &err), 0);
    ck_assert_int_eq(at, -1);
    conf.encryption_default = CFG_ENCRYPT_ALL;
    ck_assert_int_eq(run_hook("public_chat", "{}", HEAD RULE("public") "]", &at, &err), 0);
    ck_assert_int_ge(at, 0);
    /* forbid: any room whose final join rule is not public */
    conf.encryption_default = CFG_ENCRYPT_OFF;
    conf.forbid_unencrypted_private_rooms = true;
    ck_assert_int_eq(run_hook("public_chat", "{}", HEAD RULE("public") "," RULE("knock") "]", &at, &err), 0);
    ck_assert_int_ge(at, 0);
    ck_assert_int_eq(run_hook("private_chat", "{}", HEAD RULE("invite") "," RULE("public") "]", &at, &err), 0);
    ck_assert_int_eq(at, -1);
    ck_assert_int_eq(run_hook("private_chat", "{}", HEAD RULE("invite") "," ENC("{}") "]", &at, &err), -1);
    ck_assert_int_eq(err.status, 403);
    ck_assert_str_eq(err.errcode, "M_FORBIDDEN");
}
END_TEST

START_TEST(publication_rules) {
    const char *const none[] = {NULL};
    const char *const aliases[] = {"#other:example.org", "#Team-x:example.org"};
    /* no rules: anyone (the caller checks moderation) */
    ck_assert(client_directory_rules_allow(&conf, "@a:example.org", false, "!r:example.org", none, 0));
    cfg_room_rule rules[] = {
        {.user_id = "@spam*", .room_id = "*", .alias = "*", .allow = false},
        {.user_id = "*", .room_id = "!blocked:*", .alias = "*", .allow = false},
        {.user_id = "*", .room_id = "*", .alias = "#team-?:example.org", .allow = true},
    };
    conf.has_room_list_publication_rules = true;
    conf.room_list_publication_rules = rules;
    conf.n_room_list_publication_rules = 3;
    ck_assert(!client_directory_rules_allow(&conf, "@spammer:example.org", false, "!r:x", aliases, 2));
    ck_assert(!client_directory_rules_allow(&conf, "@a:example.org", false, "!blocked:x", aliases, 2));
    /* one of the aliases matches, case-insensitively */
    ck_assert(client_directory_rules_allow(&conf, "@a:example.org", false, "!r:x", aliases, 2));
    /* no alias matches: no rule matches, so no */
    ck_assert(!client_directory_rules_allow(&conf, "@a:example.org", false, "!r:x", aliases, 1));
    ck_assert(!client_directory_rules_allow(&conf, "@a:example.org", false, "!r:x", none, 0));
    /* admins pass; an empty rule list refuses everyone else */
    ck_assert(client_directory_rules_allow(&conf, "@spammer:example.org", true, "!r:x", none, 0));
    conf.n_room_list_publication_rules = 0;
    ck_assert(!client_directory_rules_allow(&conf, "@a:example.org", false, "!r:x", aliases, 2));
    conf.room_list_publication_rules = NULL;
}
END_TEST

START_TEST(versions_flags) {
    json_t *f = client_channel_unstable_features(&conf);
    ck_assert(json_is_true(json_object_get(f, "io.element.e2ee_forced.private")));
    ck_assert(json_is_true(json_object_get(f, "io.element.e2ee_forced.trusted_private")));
    ck_assert(json_is_false(json_object_get(f, "io.element.e2ee_forced.public")));
    ck_assert(json_is_true(json_object_get(f, "org.matrix.msc3266")));
    json_decref(f);
    conf.encryption_default = CFG_ENCRYPT_OFF;
    f = client_channel_unstable_features(&conf);
    ck_assert(json_is_false(json_object_get(f, "io.element.e2ee_forced.private")));
    json_decref(f);
    conf.forbid_unencrypted_private_rooms = true;
    f = client_channel_unstable_features(&conf);
    ck_assert(json_is_true(json_object_get(f, "io.element.e2ee_forced.private")));
    ck_assert(json_is_false(json_object_get(f, "io.element.e2ee_forced.public")));
    json_decref(f);
    conf.encryption_default = CFG_ENCRYPT_ALL;
    f = client_channel_unstable_features(&conf);
    ck_assert(json_is_true(json_object_get(f, "io.element.e2ee_forced.public")));
    json_decref(f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("channels");
    TCase *tc = tcase_create("channels");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, encryption_default_placement);
    tcase_add_test(tc, encryption_default_when);
    tcase_add_test(tc, publication_rules);
    tcase_add_test(tc, versions_flags);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
