/* test_core_json.c — parsing untrusted JSON and writing canonical JSON:
 * the spec appendix's examples byte for byte, the escapes, key order by code
 * point, integer limits, U+0000, and how parse errors are classified. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"

/* Parse in, canonicalise, compare with want byte for byte. */
static void assert_canon(const char *in, size_t inlen, const char *want, size_t wantlen) {
    hs_err err = {0};
    json_t *v = hs_json_parse(in, inlen, &err);
    ck_assert_msg(v != NULL, "parse failed: %s %s", err.errcode, err.msg);
    size_t len = 0;
    char *out = hs_json_canonical(v, &len, &err);
    ck_assert_msg(out != NULL, "canonical failed: %s %s", err.errcode, err.msg);
    ck_assert_uint_eq(len, wantlen);
    ck_assert_msg(memcmp(out, want, len) == 0, "got %s want %s", out, want);
    ck_assert_int_eq(out[len], '\0');
    free(out);
    json_decref(v);
}
#define CANON(in, want) assert_canon(in, sizeof(in) - 1, want, sizeof(want) - 1)

/* Canonicalise v (stealing it) and expect 400 M_BAD_JSON. */
static void assert_canon_rejects(json_t *v) {
    hs_err err = {0};
    size_t len = 12345;
    char *out = hs_json_canonical(v, &len, &err);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(err.status, 400);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    ck_assert_uint_eq(len, 12345); /* untouched on failure */
    json_decref(v);
}

static void assert_parse_error(const char *in, size_t len, const char *errcode) {
    hs_err err = {0};
    json_t *v = hs_json_parse(in, len, &err);
    ck_assert_msg(v == NULL, "parsed %.*s", (int)len, in);
    ck_assert_int_eq(err.status, 400);
    ck_assert_msg(strcmp(err.errcode, errcode) == 0, "%.*s: got %s (%s), want %s", (int)len,
                  in, err.errcode, err.msg, errcode);
}
#define PARSE_ERR(in, code) assert_parse_error(in, sizeof(in) - 1, code)

START_TEST(spec_examples) {
    CANON("{}", "{}");
    CANON("{\n    \"one\": 1,\n    \"two\": \"Two\"\n}", "{\"one\":1,\"two\":\"Two\"}");
    CANON("{\n    \"b\": \"2\",\n    \"a\": \"1\"\n}", "{\"a\":\"1\",\"b\":\"2\"}");
    CANON("{\"b\":\"2\",\"a\":\"1\"}", "{\"a\":\"1\",\"b\":\"2\"}");
    CANON("{\n    \"auth\": {\n        \"success\": true,\n        \"mxid\": \"@john.doe:example.com\",\n"
          "        \"profile\": {\n            \"display_name\": \"John Doe\",\n"
          "            \"three_pids\": [\n                {\n                    \"medium\": \"email\",\n"
          "                    \"address\": \"john.doe@example.org\"\n                },\n"
          "                {\n                    \"medium\": \"msisdn\",\n"
          "                    \"address\": \"123456789\"\n                }\n            ]\n"
          "        }\n    }\n}",
          "{\"auth\":{\"mxid\":\"@john.doe:example.com\",\"profile\":{\"display_name\":\"John Doe\","
          "\"three_pids\":[{\"address\":\"john.doe@example.org\",\"medium\":\"email\"},"
          "{\"address\":\"123456789\",\"medium\":\"msisdn\"}]},\"success\":true}}");
    CANON("{\n    \"a\": \"日本語\"\n}", "{\"a\":\"日本語\"}");
    CANON("{\n    \"本\": 2,\n    \"日\": 1\n}", "{\"日\":1,\"本\":2}");
    CANON("{\n    \"a\": \"\\u65E5\"\n}", "{\"a\":\"日\"}");
    CANON("{\n    \"a\": null\n}", "{\"a\":null}");
    CANON("{\n    \"a\": -0,\n    \"b\": 1e10\n}", "{\"a\":0,\"b\":10000000000}");
}
END_TEST

START_TEST(escapes_like_python) {
    /* Every C0 control, the two mandatory escapes, and characters that must
     * NOT be escaped: '/', U+007F, U+2028, U+2029, astral. */
    CANON("[\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
          "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
          "\\u001a\\u001B\\u001c\\u001d\\u001e\\u001f\"]",
          "[\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r"
          "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019"
          "\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\"]");
    CANON("\"\\\" \\\\ \\/ \\u007f \\u2028 \\u2029 \\ud83d\\ude00 \\u00e9\"",
          "\"\\\" \\\\ / \x7f \xe2\x80\xa8 \xe2\x80\xa9 \xf0\x9f\x98\x80 \xc3\xa9\"");
    CANON("{\"k\\n\\\"\":\"v\"}", "{\"k\\n\\\"\":\"v\"}"); /* keys are escaped too */
}
END_TEST

START_TEST(keys_sorted_by_code_point) {
    /* UTF-16 order would put U+1F600 (a surrogate pair) before U+FFFF;
     * code point order, which UTF-8 bytes give, puts it after. */
    CANON("{\"\\ud83d\\ude00\":6,\"\\uffff\":5,\"日\":4,\"é\":3,\"a\":2,\"B\":1,\"\":0,\"aa\":7}",
          "{\"\":0,\"B\":1,\"a\":2,\"aa\":7,\"é\":3,\"日\":4,\"\xef\xbf\xbf\":5,"
          "\"\xf0\x9f\x98\x80\":6}");
}
END_TEST

START_TEST(scalars_and_containers) {
    CANON(" [ true , false , null , [ ] , { } , \"\" , 0 , -1 ] ",
          "[true,false,null,[],{},\"\",0,-1]");
    CANON("42", "42");
    CANON("\"x\"", "\"x\"");
    CANON("{\"a\":{\"c\":[{\"z\":1,\"y\":{}}],\"b\":2}}", "{\"a\":{\"b\":2,\"c\":[{\"y\":{},\"z\":1}]}}");
}
END_TEST

START_TEST(integer_limits) {
    CANON("[9007199254740991,-9007199254740991]", "[9007199254740991,-9007199254740991]");
    CANON("[9007199254740991.0,-9.007199254740991e15,-0.0,1E2]",
          "[9007199254740991,-9007199254740991,0,100]");
    assert_canon_rejects(json_integer(9007199254740992LL));
    assert_canon_rejects(json_integer(-9007199254740992LL));
    assert_canon_rejects(json_pack("{s:{s:[I]}}", "a", "b", (json_int_t)INT64_MIN));
    assert_canon_rejects(json_real(9007199254740992.0));
    assert_canon_rejects(json_real(1.5));
    assert_canon_rejects(json_real(-0.001));
    assert_canon_rejects(json_pack("{s:f}", "a", 0.5));

    /* Room versions 1-5 may carry any int64. */
    hs_err err = {0};
    json_t *v = json_pack("[II]", (json_int_t)INT64_MIN, (json_int_t)INT64_MAX);
    char *out = hs_json_canonical_ex(v, NULL, HS_JSON_CANON_ANY_INT, NULL, &err);
    ck_assert_str_eq(out, "[-9223372036854775808,9223372036854775807]");
    free(out);
    json_decref(v);
}
END_TEST

START_TEST(nul_in_strings) {
    hs_err err = {0};
    const char in[] = "{\"a\":\"x\\u0000y\"}";
    json_t *v = hs_json_parse(in, sizeof in - 1, &err);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(json_string_length(json_object_get(v, "a")), 3);
    size_t len = 0;
    char *out = hs_json_canonical(v, &len, &err);
    ck_assert_uint_eq(len, sizeof in - 1);
    ck_assert_mem_eq(out, in, len);
    free(out);
    json_decref(v);

    /* jansson's parser refuses U+0000 in keys, but code can make such keys;
     * they sort and escape by their full length. */
    v = json_object();
    json_object_setn_new(v, "a\0", 2, json_integer(1));
    json_object_setn_new(v, "a", 1, json_integer(2));
    out = hs_json_canonical(v, &len, &err);
    ck_assert_str_eq(out, "{\"a\":2,\"a\\u0000\":1}");
    free(out);
    json_decref(v);
}
END_TEST

START_TEST(skip_top_level_members) {
    hs_err err = {0};
    const char in[] = "{\"unsigned\":{\"x\":1},\"b\":{\"unsigned\":2},\"signatures\":{},\"a\":1}";
    json_t *v = hs_json_parse(in, sizeof in - 1, &err);
    const char *const skip[] = {"signatures", "unsigned", NULL};
    char *out = hs_json_canonical_ex(v, skip, 0, NULL, &err);
    ck_assert_str_eq(out, "{\"a\":1,\"b\":{\"unsigned\":2}}"); /* only the top level */
    free(out);
    const char *const all[] = {"a", "b", "signatures", "unsigned", NULL};
    out = hs_json_canonical_ex(v, all, 0, NULL, &err);
    ck_assert_str_eq(out, "{}");
    free(out);
    json_decref(v);
}
END_TEST

START_TEST(depth_and_cycles) {
    /* Too deep to write: a bounded stack, not a crash. */
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < HS_JSON_MAX_DEPTH + 10; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    assert_canon_rejects(root);

    /* A cycle built by hand ends at the depth limit too. */
    json_t *a = json_object(), *b = json_object();
    json_object_set(a, "b", b);
    json_object_set(b, "a", a);
    hs_err err = {0};
    ck_assert_ptr_null(hs_json_canonical(a, NULL, &err));
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    json_object_clear(b);
    json_decref(a);
    json_decref(b);

    ck_assert_ptr_null(hs_json_canonical(NULL, NULL, &err));
}
END_TEST

START_TEST(parse_not_json) {
    PARSE_ERR("", "M_NOT_JSON");
    PARSE_ERR("   \n", "M_NOT_JSON");
    PARSE_ERR("abc", "M_NOT_JSON");
    PARSE_ERR("{", "M_NOT_JSON");
    PARSE_ERR("{\"a\":}", "M_NOT_JSON");
    PARSE_ERR("[1,]", "M_NOT_JSON");
    PARSE_ERR("{} x", "M_NOT_JSON");
    PARSE_ERR("{}{}", "M_NOT_JSON");
    PARSE_ERR("NaN", "M_NOT_JSON");
    PARSE_ERR("[Infinity]", "M_NOT_JSON");
    PARSE_ERR("[-Infinity]", "M_NOT_JSON");
    PARSE_ERR("[01]", "M_NOT_JSON");
    PARSE_ERR("\"\\x\"", "M_NOT_JSON");
    PARSE_ERR("\"a\x01\"", "M_NOT_JSON");       /* raw control character */
    PARSE_ERR("\"a\0b\"", "M_NOT_JSON");        /* raw NUL byte */
    PARSE_ERR("{\"a\":1}\0", "M_NOT_JSON");     /* NUL after the document */
    PARSE_ERR("\xef\xbb\xbf{}", "M_NOT_JSON");  /* byte order mark */
    /* Invalid UTF-8: a stray byte, an overlong '/', an encoded surrogate,
     * a truncated sequence, a code point above U+10FFFF. */
    PARSE_ERR("\"\xff\"", "M_NOT_JSON");
    PARSE_ERR("\"\xc0\xaf\"", "M_NOT_JSON");
    PARSE_ERR("\"\xed\xa0\x80\"", "M_NOT_JSON");
    PARSE_ERR("\"\xe6\x97\"", "M_NOT_JSON");
    PARSE_ERR("\"\xf4\x90\x80\x80\"", "M_NOT_JSON");
    PARSE_ERR("{\"\xff\":1}", "M_NOT_JSON");

    hs_err err = {0};
    ck_assert_ptr_null(hs_json_parse(NULL, 0, &err));
    ck_assert_str_eq(err.errcode, "M_NOT_JSON");
}
END_TEST

START_TEST(parse_bad_json) {
    PARSE_ERR("{\"a\":1,\"a\":2}", "M_BAD_JSON");
    PARSE_ERR("{\"x\":{\"a\":1,\"b\":2,\"a\":1}}", "M_BAD_JSON");
    PARSE_ERR("{\"\\u0061\":1,\"a\":2}", "M_BAD_JSON"); /* same key, spelt differently */
    PARSE_ERR("[99999999999999999999]", "M_BAD_JSON");
    PARSE_ERR("[-9223372036854775809]", "M_BAD_JSON");
    PARSE_ERR("[1e400]", "M_BAD_JSON");
    PARSE_ERR("[\"\\ud800\"]", "M_BAD_JSON");          /* lone surrogate */
    PARSE_ERR("[\"\\udc00\\ud800\"]", "M_BAD_JSON");
    PARSE_ERR("{\"a\\u0000\":1}", "M_BAD_JSON");       /* jansson cannot hold it */

    enum { DEEP = 3000 };
    char *deep = malloc(2 * DEEP);
    memset(deep, '[', DEEP);
    memset(deep + DEEP, ']', DEEP);
    assert_parse_error(deep, 2 * DEEP, "M_BAD_JSON");
    free(deep);
}
END_TEST

START_TEST(parse_accepts) {
    hs_err err = {0};
    json_t *v = hs_json_parse("{\"a\":[1,2]} \r\n\t", 15, &err);
    ck_assert_ptr_nonnull(v);
    json_decref(v);
    /* Only len bytes are read: the buffer need not be NUL-terminated. */
    v = hs_json_parse("[1]garbage", 3, &err);
    ck_assert_ptr_nonnull(v);
    json_decref(v);
    /* Integers beyond 2^53 parse (old room versions carry them). */
    v = hs_json_parse("9223372036854775807", 19, &err);
    ck_assert(json_is_integer(v));
    json_decref(v);
}
END_TEST

START_TEST(parse_object) {
    hs_err err = {0};
    json_t *v = hs_json_parse_object("{}", 2, &err);
    ck_assert(json_is_object(v));
    json_decref(v);
    ck_assert_ptr_null(hs_json_parse_object("[]", 2, &err));
    ck_assert_int_eq(err.status, 400);
    ck_assert_str_eq(err.errcode, "M_BAD_JSON");
    ck_assert_ptr_null(hs_json_parse_object("nope", 4, &err));
    ck_assert_str_eq(err.errcode, "M_NOT_JSON");
}
END_TEST

/* A big document with long strings: the writer must not copy quadratically. */
START_TEST(large_document) {
    enum { KEYS = 20000, STRLEN = 1000 };
    json_t *v = json_object();
    char *s = malloc(STRLEN + 1);
    memset(s, 'x', STRLEN);
    s[STRLEN] = '\0';
    s[STRLEN / 2] = '\n';
    for (int i = KEYS - 1; i >= 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "k%05d", i);
        json_object_set_new(v, key, json_string(s));
    }
    hs_err err = {0};
    size_t len = 0;
    char *out = hs_json_canonical(v, &len, &err);
    ck_assert_ptr_nonnull(out);
    /* {} + per member: "k00000": (9) + "..." (STRLEN + 1 escape + 2) + comma */
    ck_assert_uint_eq(len, 2 + (size_t)KEYS * (9 + STRLEN + 3) + KEYS - 1);
    ck_assert(strncmp(out, "{\"k00000\":\"", 11) == 0);
    free(out);
    free(s);
    json_decref(v);
}
END_TEST

int main(void) {
    Suite *s = suite_create("core_json");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, spec_examples);
    tcase_add_test(tc, escapes_like_python);
    tcase_add_test(tc, keys_sorted_by_code_point);
    tcase_add_test(tc, scalars_and_containers);
    tcase_add_test(tc, integer_limits);
    tcase_add_test(tc, nul_in_strings);
    tcase_add_test(tc, skip_top_level_members);
    tcase_add_test(tc, depth_and_cycles);
    tcase_add_test(tc, parse_not_json);
    tcase_add_test(tc, parse_bad_json);
    tcase_add_test(tc, parse_accepts);
    tcase_add_test(tc, parse_object);
    tcase_add_test(tc, large_document);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
