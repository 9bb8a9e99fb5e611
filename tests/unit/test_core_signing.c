/* test_core_signing.c — the spec appendix's signing and event-hashing test
 * vectors byte for byte, verification failures, and Synapse-format key files. */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/json.h"
#include "homeserver/core/signing.h"

/* The appendix "Cryptographic Test Vectors" key. */
#define SPEC_SEED "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
#define SPEC_PK "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"

static hs_signing_key spec_key(void) {
    unsigned char seed[32];
    size_t n = 0;
    ck_assert_int_eq(hs_b64_decode(SPEC_SEED, strlen(SPEC_SEED), seed, sizeof seed, &n, false), 0);
    ck_assert_uint_eq(n, 32);
    hs_signing_key k;
    hs_err err = {0};
    ck_assert_int_eq(hs_signing_key_from_seed(&k, "1", seed, &err), 0);
    return k;
}

static json_t *parse(const char *s) {
    hs_err err = {0};
    json_t *v = hs_json_parse(s, strlen(s), &err);
    ck_assert_msg(v != NULL, "%s: %s", s, err.msg);
    return v;
}

/* got and the JSON text want must have the same canonical bytes. */
static void assert_same_json(const json_t *got, const char *want) {
    hs_err err = {0};
    json_t *w = parse(want);
    char *a = hs_json_canonical(got, NULL, &err);
    char *b = hs_json_canonical(w, NULL, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    json_decref(w);
}

START_TEST(spec_public_key) {
    hs_signing_key k = spec_key();
    ck_assert_str_eq(k.key_id, "ed25519:1");
    char *pk = hs_signing_key_public_b64(&k);
    ck_assert_str_eq(pk, SPEC_PK);
    free(pk);
}
END_TEST

START_TEST(spec_json_signing) {
    hs_signing_key k = spec_key();
    hs_err err = {0};
    json_t *o = parse("{}");
    ck_assert_int_eq(hs_json_sign(o, "domain", &k, &err), 0);
    assert_same_json(o, "{\"signatures\":{\"domain\":{\"ed25519:1\":\"K8280/U9SSy9IVtjBuVeLr+HpOB4BQ"
                        "FWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ\"}}}");
    ck_assert_int_eq(hs_json_verify(o, "domain", "ed25519:1", k.pk, &err), 0);
    json_decref(o);

    o = parse("{\"one\": 1, \"two\": \"Two\"}");
    ck_assert_int_eq(hs_json_sign(o, "domain", &k, &err), 0);
    assert_same_json(o, "{\"one\":1,\"signatures\":{\"domain\":{\"ed25519:1\":\"KqmLSbO39/Bzb0QIYE8"
                        "2zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw\"}},"
                        "\"two\":\"Two\"}");
    json_decref(o);
}
END_TEST

START_TEST(spec_event_signing_minimal) {
    hs_signing_key k = spec_key();
    hs_err err = {0};
    json_t *ev = parse("{\"room_id\":\"!x:domain\",\"sender\":\"@a:domain\",\"origin\":\"domain\","
                       "\"origin_server_ts\":1000000,\"signatures\":{},\"hashes\":{},\"type\":\"X\","
                       "\"content\":{},\"prev_events\":[],\"auth_events\":[],\"depth\":3,"
                       "\"unsigned\":{\"age_ts\":1000000}}");
    ck_assert_int_eq(hs_event_add_content_hash(ev, &err), 0);
    /* Redacting this event changes nothing that is signed, so it is signed as is. */
    ck_assert_int_eq(hs_json_sign(ev, "domain", &k, &err), 0);
    assert_same_json(ev, "{\"auth_events\":[],\"content\":{},\"depth\":3,\"hashes\":{\"sha256\":"
                         "\"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos\"},\"origin\":\"domain\","
                         "\"origin_server_ts\":1000000,\"prev_events\":[],\"room_id\":\"!x:domain\","
                         "\"sender\":\"@a:domain\",\"signatures\":{\"domain\":{\"ed25519:1\":"
                         "\"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOo"
                         "MszkwsQma+lYAg\"}},\"type\":\"X\",\"unsigned\":{\"age_ts\":1000000}}");
    json_decref(ev);
}
END_TEST

START_TEST(spec_event_signing_redactable) {
    hs_signing_key k = spec_key();
    hs_err err = {0};
    json_t *ev = parse("{\"content\":{\"body\":\"Here is the message content\"},\"event_id\":"
                       "\"$0:domain\",\"origin\":\"domain\",\"origin_server_ts\":1000000,\"type\":"
                       "\"m.room.message\",\"room_id\":\"!r:domain\",\"sender\":\"@u:domain\","
                       "\"signatures\":{},\"unsigned\":{\"age_ts\":1000000}}");
    ck_assert_int_eq(hs_event_add_content_hash(ev, &err), 0);
    /* Events are signed in their redacted form (redaction lives in rooms/;
     * for m.room.message it empties content), then the signature is copied. */
    json_t *redacted = json_deep_copy(ev);
    json_object_set_new(redacted, "content", json_object());
    ck_assert_int_eq(hs_json_sign(redacted, "domain", &k, &err), 0);
    json_object_set(ev, "signatures", json_object_get(redacted, "signatures"));
    assert_same_json(ev, "{\"content\":{\"body\":\"Here is the message content\"},\"event_id\":"
                         "\"$0:domain\",\"hashes\":{\"sha256\":\"onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2"
                         "JYU2n/g\"},\"origin\":\"domain\",\"origin_server_ts\":1000000,\"type\":"
                         "\"m.room.message\",\"room_id\":\"!r:domain\",\"sender\":\"@u:domain\","
                         "\"signatures\":{\"domain\":{\"ed25519:1\":\"Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJS"
                         "ikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA\"}},\"unsigned\":"
                         "{\"age_ts\":1000000}}");
    ck_assert_int_eq(hs_json_verify(redacted, "domain", "ed25519:1", k.pk, &err), 0);
    json_decref(redacted);
    json_decref(ev);
}
END_TEST

START_TEST(content_hash_keeps_other_hashes) {
    hs_err err = {0};
    json_t *ev = parse("{\"a\":1,\"hashes\":{\"sha512\":\"x\",\"sha256\":\"old\"},\"unsigned\":{\"b\":2}}");
    unsigned char h1[32], h2[32];
    ck_assert_int_eq(hs_content_hash(ev, h1, &err), 0);
    ck_assert_int_eq(hs_event_add_content_hash(ev, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "hashes"), "sha512")), "x");
    /* The hash ignores hashes, signatures and unsigned. */
    json_object_set_new(ev, "signatures", json_object());
    json_object_set_new(ev, "unsigned", json_string("changed"));
    ck_assert_int_eq(hs_content_hash(ev, h2, &err), 0);
    ck_assert_mem_eq(h1, h2, 32);
    json_object_set_new(ev, "a", json_integer(2));
    ck_assert_int_eq(hs_content_hash(ev, h2, &err), 0);
    ck_assert(memcmp(h1, h2, 32) != 0);

    json_object_set_new(ev, "hashes", json_string("nope"));
    ck_assert_int_eq(hs_event_add_content_hash(ev, &err), -1);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    json_object_set_new(ev, "a", json_real(0.5));
    ck_assert_int_eq(hs_content_hash(ev, h2, &err), -1);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    json_decref(ev);
}
END_TEST

START_TEST(sign_keeps_other_signatures_and_unsigned) {
    hs_signing_key k = spec_key();
    hs_err err = {0};
    json_t *o = parse("{\"one\":1,\"two\":\"Two\",\"unsigned\":{\"age\":5},\"signatures\":"
                      "{\"other\":{\"ed25519:x\":\"abc\"},\"domain\":{\"ed25519:old\":\"def\"}}}");
    ck_assert_int_eq(hs_json_sign(o, "domain", &k, &err), 0);
    /* Same signature as the spec vector: unsigned and signatures are not covered. */
    assert_same_json(o, "{\"one\":1,\"two\":\"Two\",\"unsigned\":{\"age\":5},\"signatures\":{\"other\":"
                        "{\"ed25519:x\":\"abc\"},\"domain\":{\"ed25519:old\":\"def\",\"ed25519:1\":"
                        "\"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD1"
                        "3EIMJpvhJI+6Bw\"}}}");
    json_decref(o);
}
END_TEST

static void assert_verify_fails(const json_t *o, const char *entity, const char *key_id,
                                const unsigned char pk[32], int status, const char *errcode) {
    hs_err err = {0};
    ck_assert_int_eq(hs_json_verify(o, entity, key_id, pk, &err), -1);
    ck_assert_int_eq(err.status, status);
    ck_assert_str_eq(err.errcode, errcode);
}

START_TEST(verify_failures) {
    hs_signing_key k = spec_key();
    hs_err err = {0};
    json_t *o = parse("{\"a\":\"b\"}");
    ck_assert_int_eq(hs_json_sign(o, "domain", &k, &err), 0);
    ck_assert_int_eq(hs_json_verify(o, "domain", "ed25519:1", k.pk, &err), 0);

    assert_verify_fails(o, "other", "ed25519:1", k.pk, 401, "M_UNAUTHORIZED");
    assert_verify_fails(o, "domain", "ed25519:2", k.pk, 401, "M_UNAUTHORIZED");
    assert_verify_fails(o, "domain", "curve25519:1", k.pk, 401, "M_UNAUTHORIZED");
    unsigned char wrong[32];
    memcpy(wrong, k.pk, 32);
    wrong[0] ^= 1;
    assert_verify_fails(o, "domain", "ed25519:1", wrong, 401, "M_UNAUTHORIZED");

    /* unsigned may change; signed content may not. */
    json_object_set_new(o, "unsigned", json_pack("{s:i}", "age", 1));
    ck_assert_int_eq(hs_json_verify(o, "domain", "ed25519:1", k.pk, &err), 0);
    json_object_set_new(o, "a", json_string("c"));
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 401, "M_UNAUTHORIZED");
    json_object_set_new(o, "a", json_string("b"));
    json_object_set_new(o, "extra", json_null());
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 401, "M_UNAUTHORIZED");
    json_object_del(o, "extra");
    ck_assert_int_eq(hs_json_verify(o, "domain", "ed25519:1", k.pk, &err), 0);

    json_t *mine = json_object_get(json_object_get(o, "signatures"), "domain");
    json_object_set_new(mine, "ed25519:1", json_string("not base64!"));
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 401, "M_UNAUTHORIZED");
    json_object_set_new(mine, "ed25519:1", json_string("Zm9v"));
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 401, "M_UNAUTHORIZED");
    json_object_set_new(mine, "ed25519:1", json_integer(1));
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 400, "M_BAD_JSON");
    json_object_set_new(json_object_get(o, "signatures"), "domain", json_array());
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 400, "M_BAD_JSON");
    json_object_set_new(o, "signatures", json_string("x"));
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 400, "M_BAD_JSON");
    ck_assert_int_eq(hs_json_sign(o, "domain", &k, &err), -1); /* and o is left alone */
    ck_assert_str_eq(json_string_value(json_object_get(o, "signatures")), "x");
    json_object_del(o, "signatures");
    assert_verify_fails(o, "domain", "ed25519:1", k.pk, 401, "M_UNAUTHORIZED");
    json_decref(o);

    json_t *arr = json_array();
    ck_assert_int_eq(hs_json_sign(arr, "domain", &k, &err), -1);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    assert_verify_fails(arr, "domain", "ed25519:1", k.pk, 400, "M_BAD_JSON");
    json_decref(arr);

    o = parse("{\"n\":9007199254740992}"); /* cannot be canonical JSON */
    ck_assert_int_eq(hs_json_sign(o, "domain", &k, &err), -1);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    ck_assert_ptr_null(json_object_get(o, "signatures"));
    json_decref(o);
}
END_TEST

/* A scratch directory removed at the end of each key-file test. */
static char tmpdir[64];
static char *tmp_path(const char *name) {
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}
static void setup_tmp(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pvyhs-keytest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}
static void teardown_tmp(void) {
    const char *names[] = {"k1", "k2", "k3", "k4", "k5", "k6"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    rmdir(tmpdir);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path) {
    static char buf[512];
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(key_generate_save_load) {
    hs_signing_key k, back;
    hs_err err = {0};
    ck_assert_int_eq(hs_signing_key_generate(&k), 0);
    regex_t re;
    ck_assert_int_eq(regcomp(&re, "^ed25519:a_[A-Za-z0-9]{4}$", REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_msg(regexec(&re, k.key_id, 0, NULL, 0) == 0, "key id %s", k.key_id);
    regfree(&re);

    umask(022);
    ck_assert_int_eq(hs_signing_key_save(tmp_path("k1"), &k, &err), 0);
    struct stat st;
    ck_assert_int_eq(stat(tmp_path("k1"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(hs_signing_key_load(tmp_path("k1"), &back, &err), 0);
    ck_assert_mem_eq(&k, &back, sizeof k);

    /* Never overwrite a server's identity. */
    ck_assert_int_eq(hs_signing_key_save(tmp_path("k1"), &k, &err), -1);
    ck_assert_int_eq(hs_signing_key_load(tmp_path("k1"), &back, &err), 0);
    ck_assert_mem_eq(&k, &back, sizeof k);

    hs_signing_key k2;
    ck_assert_int_eq(hs_signing_key_generate(&k2), 0);
    ck_assert(memcmp(k.seed, k2.seed, 32) != 0);
    hs_signing_key_wipe(&k2);
    static const unsigned char zero[sizeof k2];
    ck_assert_mem_eq(&k2, zero, sizeof k2);
}
END_TEST

START_TEST(key_file_synapse_format) {
    hs_err err = {0};
    hs_signing_key k;
    const char *line = "ed25519 1 " SPEC_SEED "\n";
    write_file(tmp_path("k2"), line);
    ck_assert_int_eq(hs_signing_key_load(tmp_path("k2"), &k, &err), 0);
    hs_signing_key spec = spec_key();
    ck_assert_mem_eq(&k, &spec, sizeof k);
    /* What we save is what Synapse writes (signedjson.key.write_signing_keys):
     * the seed's canonical spelling, which ends in 0 where the spec's has 1. */
    ck_assert_int_eq(hs_signing_key_save(tmp_path("k3"), &k, &err), 0);
    ck_assert_str_eq(read_file(tmp_path("k3")),
                     "ed25519 1 YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0\n");

    /* Blank lines, comments and other algorithms before it; padding; CRLF. */
    write_file(tmp_path("k4"), "\n# a comment\ncurve25519 x AAAA\r\ned25519 a_Ab-d " SPEC_SEED "=\r\n"
                               "ed25519 second " SPEC_SEED "\n");
    ck_assert_int_eq(hs_signing_key_load(tmp_path("k4"), &k, &err), 0);
    ck_assert_str_eq(k.key_id, "ed25519:a_Ab-d");
    ck_assert_mem_eq(k.pk, spec.pk, 32);
}
END_TEST

static void assert_load_fails(const char *text) {
    hs_err err = {0};
    hs_signing_key k;
    unlink(tmp_path("k5"));
    write_file(tmp_path("k5"), text);
    ck_assert_msg(hs_signing_key_load(tmp_path("k5"), &k, &err) == -1, "loaded '%s'", text);
    ck_assert_int_eq(err.status, 500);
}

START_TEST(key_file_errors) {
    assert_load_fails("");
    assert_load_fails("curve25519 1 " SPEC_SEED "\n");
    assert_load_fails("ed25519 1\n");
    assert_load_fails("ed25519 1 " SPEC_SEED " extra\n");
    assert_load_fails("ed25519 1 Zm9v\n");                  /* not 32 bytes */
    assert_load_fails("ed25519 1 " SPEC_SEED "AA\n");
    assert_load_fails("ed25519 b@d " SPEC_SEED "\n");         /* not an opaque identifier */
    hs_err err = {0};
    hs_signing_key k = {0};
    ck_assert_int_eq(hs_signing_key_load(tmp_path("missing"), &k, &err), -1);
    ck_assert_int_eq(hs_signing_key_save(tmp_path("no/such/dir"), &k, &err), -1);
    ck_assert_int_eq(hs_signing_key_from_seed(&k, "", k.seed, &err), -1);
    char longv[80];
    memset(longv, 'a', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    ck_assert_int_eq(hs_signing_key_from_seed(&k, longv, k.seed, &err), -1);
    longv[55] = '\0'; /* the longest that fits key_id */
    ck_assert_int_eq(hs_signing_key_from_seed(&k, longv, k.seed, &err), 0);
    ck_assert_uint_eq(strlen(k.key_id), 63);
}
END_TEST

int main(void) {
    Suite *s = suite_create("core_signing");
    TCase *tc = tcase_create("signing");
    tcase_add_test(tc, spec_public_key);
    tcase_add_test(tc, spec_json_signing);
    tcase_add_test(tc, spec_event_signing_minimal);
    tcase_add_test(tc, spec_event_signing_redactable);
    tcase_add_test(tc, content_hash_keeps_other_hashes);
    tcase_add_test(tc, sign_keeps_other_signatures_and_unsigned);
    tcase_add_test(tc, verify_failures);
    suite_add_tcase(s, tc);
    TCase *files = tcase_create("key_files");
    tcase_add_checked_fixture(files, setup_tmp, teardown_tmp);
    tcase_add_test(files, key_generate_save_load);
    tcase_add_test(files, key_file_synapse_format);
    tcase_add_test(files, key_file_errors);
    suite_add_tcase(s, files);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
