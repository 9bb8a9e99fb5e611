/* test_client_e2ee.c — the pure parts of end-to-end encryption support:
 * the key backup replacement rule, user IDs, cross-signing key shapes,
 * backup version numbers and signature checks with real ed25519 keys. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/e2ee_internal.h"
#include "homeserver/core/signing.h"

static key_backup_session ks(bool v, long long fmi, long long fc) {
    return (key_backup_session){v, fmi, fc};
}

START_TEST(replacement_rule) {
    /* is_verified first, whatever the rest says. */
    key_backup_session a = ks(true, 9, 9), b = ks(false, 0, 0);
    ck_assert(key_backup_better(&a, &b));
    ck_assert(!key_backup_better(&b, &a));
    /* Then the lower first_message_index, whatever forwarded_count says. */
    a = ks(false, 1, 9), b = ks(false, 2, 0);
    ck_assert(key_backup_better(&a, &b));
    ck_assert(!key_backup_better(&b, &a));
    /* Then the lower forwarded_count. */
    a = ks(true, 3, 1), b = ks(true, 3, 2);
    ck_assert(key_backup_better(&a, &b));
    ck_assert(!key_backup_better(&b, &a));
    /* A tie keeps the stored copy. */
    a = ks(true, 3, 1), b = ks(true, 3, 1);
    ck_assert(!key_backup_better(&a, &b));
}
END_TEST

START_TEST(user_ids) {
    ck_assert_str_eq(e2ee_user_server("@a:example.org"), "example.org");
    ck_assert_str_eq(e2ee_user_server("@a:localhost:8008"), "localhost:8008");
    ck_assert_ptr_null(e2ee_user_server("a:example.org"));
    ck_assert_ptr_null(e2ee_user_server("@:example.org"));
    ck_assert_ptr_null(e2ee_user_server("@a:"));
    ck_assert_ptr_null(e2ee_user_server("@a"));
    ck_assert_ptr_null(e2ee_user_server(NULL));
}
END_TEST

START_TEST(backup_versions) {
    long long v = 0;
    ck_assert(key_backup_version_number("1", &v) && v == 1);
    ck_assert(key_backup_version_number("42", &v) && v == 42);
    ck_assert(!key_backup_version_number("0", &v));
    ck_assert(!key_backup_version_number("-1", &v));
    ck_assert(!key_backup_version_number("1a", &v));
    ck_assert(!key_backup_version_number("", &v));
    ck_assert(!key_backup_version_number("1234567890123456789", &v));
}
END_TEST

static json_t *cs_key(const char *id, const char *pk) {
    return json_pack("{s:s, s:[s], s:{s:s}}", "user_id", "@a:x", "usage", "master", "keys", id, pk);
}

START_TEST(cross_signing_public_key) {
    hs_signing_key k;
    ck_assert_int_eq(hs_signing_key_generate(&k), 0);
    char *pk = hs_signing_key_public_b64(&k);
    char id[80];
    snprintf(id, sizeof id, "ed25519:%s", pk);
    json_t *good = cs_key(id, pk);
    ck_assert_str_eq(e2ee_cs_key_public(good), pk);
    json_t *mismatch = cs_key("ed25519:other", pk);
    ck_assert_ptr_null(e2ee_cs_key_public(mismatch));
    json_t *short_key = cs_key("ed25519:abc", "abc");
    ck_assert_ptr_null(e2ee_cs_key_public(short_key));
    json_t *two = cs_key(id, pk);
    json_object_set_new(json_object_get(two, "keys"), "ed25519:y", json_string(pk));
    ck_assert_ptr_null(e2ee_cs_key_public(two));
    json_decref(good), json_decref(mismatch), json_decref(short_key), json_decref(two);
    free(pk);
}
END_TEST

START_TEST(signature_checks) {
    hs_signing_key k;
    hs_err err = {0};
    ck_assert_int_eq(hs_signing_key_generate(&k), 0);
    char *pk = hs_signing_key_public_b64(&k);
    json_t *obj = json_pack("{s:s, s:{s:s}}", "user_id", "@a:x", "keys", "k", "v");
    ck_assert_int_eq(hs_json_sign(obj, "@a:x", &k, &err), 0);
    ck_assert_int_eq(e2ee_verify(obj, "@a:x", k.key_id, pk, "test", &err), 0);
    /* Wrong signer, wrong key ID, a key that is not a key, a changed object. */
    ck_assert_int_eq(e2ee_verify(obj, "@b:x", k.key_id, pk, "test", &err), -1);
    ck_assert_str_eq(err.errcode, "M_INVALID_SIGNATURE");
    ck_assert_int_eq(e2ee_verify(obj, "@a:x", "ed25519:nope", pk, "test", &err), -1);
    ck_assert_int_eq(e2ee_verify(obj, "@a:x", k.key_id, "notbase64!", "test", &err), -1);
    json_object_set_new(obj, "user_id", json_string("@evil:x"));
    ck_assert_int_eq(e2ee_verify(obj, "@a:x", k.key_id, pk, "test", &err), -1);
    ck_assert_int_eq(err.status, 400);
    json_decref(obj);
    free(pk);
}
END_TEST

START_TEST(canonical_without_signatures) {
    hs_err err = {0};
    json_t *a = json_pack("{s:s, s:{}, s:{}}", "k", "v", "signatures", "unsigned");
    json_t *b = json_pack("{s:s}", "k", "v");
    char *ca = e2ee_canonical(a, true, &err), *cb = e2ee_canonical(b, true, &err);
    ck_assert_str_eq(ca, cb);
    free(ca);
    ca = e2ee_canonical(a, false, &err);
    ck_assert_str_ne(ca, cb);
    free(ca), free(cb);
    json_decref(a), json_decref(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_e2ee");
    TCase *tc = tcase_create("e2ee");
    tcase_add_test(tc, replacement_rule);
    tcase_add_test(tc, user_ids);
    tcase_add_test(tc, backup_versions);
    tcase_add_test(tc, cross_signing_public_key);
    tcase_add_test(tc, signature_checks);
    tcase_add_test(tc, canonical_without_signatures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
