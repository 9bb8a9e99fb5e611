/* test_client_accounts.c — the pure parts of accounts and devices: UIA flow
 * order, login identifiers, profile key names, registration token syntax,
 * token hashing and TURN passwords (coturn's scheme, checked against
 * Python's hmac/base64). The HTTP behaviour is in
 * tests/integration/test_accounts.py. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/profile.h"
#include "homeserver/client/registration_tokens.h"
#include "homeserver/client/text.h"
#include "homeserver/client/tokens.h"
#include "homeserver/client/uia.h"
#include "homeserver/client/voip.h"

static const char *const token_dummy[] = {"m.login.registration_token", "m.login.dummy", NULL};
static const char *const token_only[] = {"m.login.registration_token", NULL};
static const char *const password[] = {"m.login.password", NULL};

START_TEST(test_uia_flow_order) {
    const client_uia_flow flows[] = {token_dummy, password, NULL};
    json_t *done = json_array();
    ck_assert(client_uia_stage_expected(flows, done, "m.login.registration_token"));
    ck_assert(client_uia_stage_expected(flows, done, "m.login.password"));
    ck_assert(!client_uia_stage_expected(flows, done, "m.login.dummy")); /* out of order */
    ck_assert(!client_uia_flows_done(flows, done));
    json_array_append_new(done, json_string("m.login.registration_token"));
    ck_assert(client_uia_stage_expected(flows, done, "m.login.dummy"));
    ck_assert(!client_uia_stage_expected(flows, done, "m.login.password"));
    ck_assert(!client_uia_flows_done(flows, done));
    json_array_append_new(done, json_string("m.login.dummy"));
    ck_assert(client_uia_flows_done(flows, done));
    ck_assert(!client_uia_stage_expected(flows, done, "m.login.dummy"));
    json_decref(done);
    /* A shorter flow that is a prefix of another completes first. */
    const client_uia_flow prefix[] = {token_dummy, token_only, NULL};
    done = json_pack("[s]", "m.login.registration_token");
    ck_assert(client_uia_flows_done(prefix, done));
    json_decref(done);
}
END_TEST

static char *ident(const char *json, hs_err *err) {
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    memset(err, 0, sizeof *err);
    char *u = client_identifier_user(j, "example.org", err);
    json_decref(j);
    return u;
}

START_TEST(test_login_identifiers) {
    static const struct { const char *json, *user; } ok[] = {
        {"{\"identifier\": {\"type\": \"m.id.user\", \"user\": \"alice\"}}", "@alice:example.org"},
        {"{\"identifier\": {\"type\": \"m.id.user\", \"user\": \"ALICE\"}}", "@alice:example.org"},
        {"{\"identifier\": {\"type\": \"m.id.user\", \"user\": \"@Alice:example.org\"}}",
         "@alice:example.org"},
        {"{\"user\": \"bob\", \"identifier\": {\"type\": \"m.id.user\", \"user\": \"alice\"}}",
         "@bob:example.org"},
    };
    static const struct { const char *json; int status; const char *code; } bad[] = {
        {"{}", 400, "M_INVALID_PARAM"},
        {"{\"identifier\": 5}", 400, "M_INVALID_PARAM"},
        {"{\"identifier\": {}}", 400, "M_MISSING_PARAM"},
        {"{\"identifier\": {\"type\": \"m.id.user\"}}", 400, "M_MISSING_PARAM"},
        {"{\"identifier\": {\"type\": \"m.id.user\", \"user\": \"\"}}", 400, "M_MISSING_PARAM"},
        {"{\"identifier\": {\"type\": \"m.id.thirdparty\", \"medium\": \"email\"}}", 400,
         "M_MISSING_PARAM"},
        {"{\"identifier\": {\"type\": \"m.id.phone\", \"phone\": \"1\"}}", 400, "M_INVALID_PARAM"},
        {"{\"identifier\": {\"type\": \"m.id.nope\"}}", 400, "M_UNKNOWN"},
        {"{\"identifier\": {\"type\": \"m.id.thirdparty\", \"medium\": \"email\", "
         "\"address\": \"a@b.c\"}}", 403, "M_FORBIDDEN"},
        {"{\"medium\": \"email\", \"address\": \"a@b.c\"}", 403, "M_FORBIDDEN"},
        {"{\"identifier\": {\"type\": \"m.id.phone\", \"country\": \"FR\", \"number\": \"0612\"}}",
         403, "M_FORBIDDEN"},
        {"{\"identifier\": {\"type\": \"m.id.user\", \"user\": \"@alice:other.org\"}}", 403,
         "M_FORBIDDEN"},
        {"{\"identifier\": {\"type\": \"m.id.user\", \"user\": \"a b\"}}", 403, "M_FORBIDDEN"},
    };
    hs_err err;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char *u = ident(ok[i].json, &err);
        ck_assert_msg(u, "%s: %s", ok[i].json, err.msg);
        ck_assert_str_eq(u, ok[i].user);
        free(u);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_ptr_null(ident(bad[i].json, &err));
        ck_assert_msg(err.status == bad[i].status && !strcmp(err.errcode, bad[i].code),
                      "%s: %d %s", bad[i].json, err.status, err.errcode);
    }
}
END_TEST

START_TEST(test_profile_keys) {
    static const char *const ok[] = {"displayname", "avatar_url", "m.tz", "org.example.job",
                                     "com.example.a_b9", "a.b.c.d", NULL};
    static const char *const bad[] = {"", "Displayname", "tz", "org.", ".org", "org..x",
                                      "org.Example", "org.9x", "org.ex-ample", "org.ex ample",
                                      NULL};
    hs_err err;
    for (const char *const *k = ok; *k; k++) ck_assert_msg(client_profile_key_check(*k, &err) == 0, "%s", *k);
    for (const char *const *k = bad; *k; k++) {
        ck_assert_msg(client_profile_key_check(*k, &err) < 0, "%s", *k);
        ck_assert_str_eq(err.errcode, "M_INVALID_PARAM");
    }
    char long_key[300] = "org.";
    memset(long_key + 4, 'a', 251);
    ck_assert_int_eq(client_profile_key_check(long_key, &err), 0); /* 255 bytes */
    long_key[255] = 'a';
    ck_assert_int_lt(client_profile_key_check(long_key, &err), 0);
    ck_assert_str_eq(err.errcode, "M_KEY_TOO_LARGE");
}
END_TEST

START_TEST(test_registration_token_syntax) {
    ck_assert(client_regtoken_syntax_ok("fBVFdqVE"));
    ck_assert(client_regtoken_syntax_ok("a.b_c~d-e"));
    char max[65];
    memset(max, 'x', 64), max[64] = 0;
    ck_assert(client_regtoken_syntax_ok(max));
    char over[66];
    memset(over, 'x', 65), over[65] = 0;
    ck_assert(!client_regtoken_syntax_ok(over));
    ck_assert(!client_regtoken_syntax_ok(""));
    ck_assert(!client_regtoken_syntax_ok("has space"));
    ck_assert(!client_regtoken_syntax_ok("slash/"));
    ck_assert(!client_regtoken_syntax_ok("é"));
}
END_TEST

START_TEST(test_tokens_and_text) {
    char hex[CLIENT_TOKEN_HEX_LEN];
    client_token_hash_hex("pvy_abc", hex);
    ck_assert_str_eq(hex, "\\xb2c2263af45fd57cf4ce000340bb665bc76eb5056ac6d20868a2496373eef393");
    char *a = client_token_new("pvyr_"), *b = client_token_new("pvyr_");
    ck_assert(!strncmp(a, "pvyr_", 5) && strlen(a) == 5 + 43);
    ck_assert_str_ne(a, b);
    ck_assert_uint_eq(strspn(a + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 43);
    free(a), free(b);
    ck_assert_uint_eq(client_utf8_chars("héllo"), 5);
    ck_assert_uint_eq(client_utf8_chars("日本"), 2);
    ck_assert_uint_eq(client_utf8_chars(""), 0);
}
END_TEST

START_TEST(test_turn_password) {
    char pass[29];
    /* base64(hmac.new(b'coturn-secret', b'1700000000:@alice:example.org', sha1)) */
    client_turn_password("coturn-secret", "1700000000:@alice:example.org", pass);
    ck_assert_str_eq(pass, "JBUZzOwpNYZu1qsYYIiJSoiX4WQ=");
}
END_TEST

static Suite *accounts_suite(void) {
    Suite *s = suite_create("client_accounts");
    TCase *t = tcase_create("pure");
    tcase_add_test(t, test_uia_flow_order);
    tcase_add_test(t, test_login_identifiers);
    tcase_add_test(t, test_profile_keys);
    tcase_add_test(t, test_registration_token_syntax);
    tcase_add_test(t, test_tokens_and_text);
    tcase_add_test(t, test_turn_password);
    suite_add_tcase(s, t);
    return s;
}

int main(void) {
    SRunner *r = srunner_create(accounts_suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
