/* test_core_base64.c — unpadded base64: the spec's examples, both alphabets,
 * padded and unpadded input, and what the decoder must refuse. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"

static void assert_encodes(const char *in, const char *want, bool urlsafe) {
    char *out = hs_b64_encode((const unsigned char *)in, strlen(in), urlsafe);
    ck_assert_str_eq(out, want);
    free(out);
}

/* Decode in and expect the bytes want (wantlen of them). */
static void assert_decodes(const char *in, const void *want, size_t wantlen, bool urlsafe) {
    unsigned char out[64];
    size_t n = 999;
    ck_assert_msg(hs_b64_decode(in, strlen(in), out, sizeof out, &n, urlsafe) == 0,
                  "failed to decode '%s'", in);
    ck_assert_uint_eq(n, wantlen);
    if (wantlen) ck_assert_mem_eq(out, want, wantlen);
}

static void assert_rejects(const char *in, size_t len, bool urlsafe) {
    unsigned char out[64];
    size_t n = 0;
    ck_assert_msg(hs_b64_decode(in, len, out, sizeof out, &n, urlsafe) == -1,
                  "accepted '%.*s'", (int)len, in);
}
#define REJECTS(in, urlsafe) assert_rejects(in, sizeof(in) - 1, urlsafe)

START_TEST(spec_examples) {
    static const char *const pairs[][2] = {
        {"", ""},           {"f", "Zg"},         {"fo", "Zm8"},         {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_encodes(pairs[i][0], pairs[i][1], false);
        assert_encodes(pairs[i][0], pairs[i][1], true);
        assert_decodes(pairs[i][1], pairs[i][0], strlen(pairs[i][0]), false);
    }
}
END_TEST

START_TEST(padded_input_accepted) {
    assert_decodes("Zg==", "f", 1, false);
    assert_decodes("Zm8=", "fo", 2, false);
    assert_decodes("Zm9vYg==", "foob", 4, true);
    assert_decodes("Zm9vYmFy", "foobar", 6, false);
}
END_TEST

/* Python ignores bits after the last byte, and the spec's signing-key seed
 * (".../XA1", canonically ".../XA0") relies on it. */
START_TEST(unused_bits_ignored) {
    assert_decodes("Zh", "f", 1, false);
    assert_decodes("Zh==", "f", 1, false);
    assert_decodes("Zm9=", "fo", 2, false);
    assert_decodes("Zm9vYmF_", "fooba\x7f", 6, true);
    assert_decodes("Zm9vYmF/", "fooba\x7f", 6, false);
    assert_decodes("Zm9vYm_", "foobo", 5, true); /* as Python decodes it */
    unsigned char a[32], b[32];
    size_t na = 0, nb = 0;
    ck_assert_int_eq(hs_b64_decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", 43, a, 32, &na, false), 0);
    ck_assert_int_eq(hs_b64_decode("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0", 43, b, 32, &nb, false), 0);
    ck_assert_uint_eq(na, 32);
    ck_assert_mem_eq(a, b, 32);
    char *again = hs_b64_encode(a, 32, false);
    ck_assert_str_eq(again, "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0");
    free(again);
    REJECTS("Zm9vYm!", false); /* the last character is still checked */
    REJECTS("Zm9vYm=", false);
    REJECTS("Zm9vY", false);
}
END_TEST

START_TEST(alphabets) {
    const unsigned char bin[] = {0xfb, 0xff, 0xbf};
    char *std = hs_b64_encode(bin, sizeof bin, false);
    char *url = hs_b64_encode(bin, sizeof bin, true);
    ck_assert_str_eq(std, "+/+/");
    ck_assert_str_eq(url, "-_-_");
    assert_decodes(std, bin, sizeof bin, false);
    assert_decodes(url, bin, sizeof bin, true);
    assert_rejects(std, strlen(std), true); /* each alphabet only its own */
    assert_rejects(url, strlen(url), false);
    free(std);
    free(url);
}
END_TEST

START_TEST(invalid_input_rejected) {
    REJECTS("Z", false);        /* one character cannot hold a byte */
    REJECTS("Zm9vY", false);
    REJECTS("Zg=", false);      /* padding that does not reach a multiple of 4 */
    REJECTS("Zm9v=", false);
    REJECTS("Zg===", false);
    REJECTS("Z===", false);
    REJECTS("====", false);
    REJECTS("Zm=v", false);     /* padding in the middle */
    REJECTS("Zm9v!", false);
    REJECTS("Zm 9v", false);    /* no whitespace */
    REJECTS("Zm9v\n", false);
    REJECTS("Zm\0v", false);    /* embedded NUL: the length is what counts */
}
END_TEST

START_TEST(output_buffer_bounds) {
    unsigned char out[4];
    size_t n = 0;
    ck_assert_int_eq(hs_b64_decode("Zm9vYg", 6, out, 4, &n, false), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(hs_b64_decode("Zm9vYmE", 7, out, 4, &n, false), -1);
    ck_assert_int_eq(hs_b64_decode("", 0, NULL, 0, &n, false), 0);
    ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(round_trip) {
    unsigned char bin[300], back[300];
    for (size_t i = 0; i < sizeof bin; i++) bin[i] = (unsigned char)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof bin; len++) {
        for (int urlsafe = 0; urlsafe <= 1; urlsafe++) {
            char *s = hs_b64_encode(bin, len, urlsafe);
            ck_assert_uint_eq(strlen(s), (len * 4 + 2) / 3);
            ck_assert_ptr_null(strchr(s, '='));
            size_t n = 0;
            ck_assert_int_eq(hs_b64_decode(s, strlen(s), back, sizeof back, &n, urlsafe), 0);
            ck_assert_uint_eq(n, len);
            ck_assert(memcmp(back, bin, len) == 0);
            free(s);
        }
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("core_base64");
    TCase *tc = tcase_create("base64");
    tcase_add_test(tc, spec_examples);
    tcase_add_test(tc, padded_input_accepted);
    tcase_add_test(tc, unused_bits_ignored);
    tcase_add_test(tc, alphabets);
    tcase_add_test(tc, invalid_input_rejected);
    tcase_add_test(tc, output_buffer_bounds);
    tcase_add_test(tc, round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
