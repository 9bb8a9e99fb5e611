/* test_federation_xmatrix.c — the X-Matrix header as the spec writes it and
 * as servers send it, request signatures (signed here, checked the way the
 * receiver rebuilds them), and key responses as a server or notary gets
 * them: self-signed, for the right server, untampered. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "federation/transport_internal.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/json.h"

static fed_xmatrix parse_ok(const char *h) {
    fed_xmatrix x;
    hs_err err = {0};
    ck_assert_msg(fed_xmatrix_parse(h, &x, &err) == 0, "%s: %s", h, err.msg);
    return x;
}

static void parse_bad(const char *h) {
    fed_xmatrix x;
    hs_err err = {0};
    ck_assert_msg(fed_xmatrix_parse(h, &x, &err) == -1, "accepted: %s", h);
    ck_assert_int_eq(err.status, 401);
    ck_assert_str_eq(err.errcode, "M_UNAUTHORIZED");
}

START_TEST(spec_form) {
    fed_xmatrix x = parse_ok("X-Matrix origin=\"origin.hs.example.com\",destination=\"destination."
                             "hs.example.com\",key=\"ed25519:key1\",sig=\"ABCDEF...\"");
    ck_assert_str_eq(x.origin, "origin.hs.example.com");
    ck_assert_str_eq(x.destination, "destination.hs.example.com");
    ck_assert(x.has_destination);
    ck_assert_str_eq(x.key, "ed25519:key1");
    ck_assert_str_eq(x.sig, "ABCDEF...");
}
END_TEST

START_TEST(lenient_forms) {
    /* Unquoted values (':' allowed for old servers), any order, any case,
     * spaces and tabs around commas, several spaces after the scheme. */
    fed_xmatrix x = parse_ok("X-Matrix   KEY=ed25519:a_b , \tSig=abc+/def ,origin=example.org:8448");
    ck_assert_str_eq(x.origin, "example.org:8448");
    ck_assert_str_eq(x.key, "ed25519:a_b");
    ck_assert_str_eq(x.sig, "abc+/def");
    ck_assert(!x.has_destination);
    /* Escapes in quoted values; unknown parameters ignored; the scheme's case. */
    x = parse_ok("x-matrix origin=\"ex\\ample.org\",key=\"ed25519:1\",sig=\"s\\\"ig\","
                 "extra=\"who, cares\",destination=\"[::1]:8448\"");
    ck_assert_str_eq(x.origin, "example.org");
    ck_assert_str_eq(x.sig, "s\"ig");
    ck_assert_str_eq(x.destination, "[::1]:8448");
    /* Empty list elements and a trailing comma. */
    parse_ok("X-Matrix origin=a.example,,key=ed25519:1,sig=x,");
}
END_TEST

START_TEST(malformed) {
    const char *bad[] = {
        NULL,
        "",
        "Bearer abc",
        "X-Matrix",
        "X-Matrixorigin=a,key=b,sig=c",
        "X-Matrix origin=a.example,key=ed25519:1",                    /* no sig */
        "X-Matrix key=ed25519:1,sig=x",                               /* no origin */
        "X-Matrix origin=\"a.example\",key=ed25519:1,sig=\"x",       /* unterminated */
        "X-Matrix origin=a.example,key=ed25519:1,sig=x,origin=b.example", /* twice */
        "X-Matrix origin=a example,key=ed25519:1,sig=x",            /* junk after value */
        "X-Matrix origin=,key=ed25519:1,sig=x",                       /* empty value */
        "X-Matrix origin=\"not a server\",key=ed25519:1,sig=x",      /* bad origin */
        "X-Matrix origin=a.example,key=ed25519:1,sig=x,=y",
        "X-Matrix origin=a.example;key=ed25519:1,sig=x",
        "X-Matrix origin=\"a.example\\\",key=ed25519:1,sig=x",
        "X-Matrix origin=\"a\x01.example\",key=ed25519:1,sig=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) parse_bad(bad[i]);
    char longv[1200];
    memset(longv, 'a', sizeof longv);
    snprintf(longv, sizeof longv, "X-Matrix origin=a.example,key=ed25519:1,sig=%0900d", 0);
    parse_bad(longv);
}
END_TEST

/* ---- signing and verifying ------------------------------------------------------ */

static hs_server make_server(cfg *c, const char *name, const char *version, unsigned char fill) {
    unsigned char seed[32];
    memset(seed, fill, sizeof seed);
    memset(c, 0, sizeof *c);
    c->server_name = (char *)name;
    hs_server s = {.cfg = c};
    hs_err err = {0};
    ck_assert_int_eq(hs_signing_key_from_seed(&s.key, version, seed, &err), 0);
    return s;
}

/* What the receiver does: rebuild the request object from what it sees and
 * the header, then check the signature with the sender's key. */
static int receive(const hs_server *from, const char *header, const char *method, const char *uri,
                   const char *me, const json_t *content) {
    fed_xmatrix x;
    hs_err err = {0};
    if (fed_xmatrix_parse(header, &x, &err) < 0) return -1;
    if (x.has_destination && strcmp(x.destination, me)) return -2;
    json_t *o = fed_xmatrix_request_json(method, uri, x.origin, me, content);
    json_object_set_new(o, "signatures", json_pack("{s:{s:s}}", x.origin, x.key, x.sig));
    int rc = hs_json_verify(o, x.origin, x.key, from->key.pk, &err);
    json_decref(o);
    return rc;
}

START_TEST(sign_and_verify) {
    cfg c;
    hs_server a = make_server(&c, "a.example:8448", "a_1", 7);
    hs_err err = {0};
    json_t *content = json_pack("{s:s, s:[i]}", "hello", "wörld", "n", 1);
    const char *uri = "/_matrix/federation/v1/send/txn%201?x=y";
    char *h = fed_xmatrix_sign(&a, "b.example", "PUT", uri, content, &err);
    ck_assert_ptr_nonnull(h);
    ck_assert_msg(!strncmp(h, "X-Matrix origin=\"a.example:8448\",destination=\"b.example\",key=\""
                              "ed25519:a_1\",sig=\"", 70), "%s", h);
    ck_assert_int_eq(receive(&a, h, "PUT", uri, "b.example", content), 0);
    /* Anything different breaks it: body, method, target, destination. */
    json_t *other = json_pack("{s:s, s:[i]}", "hello", "world", "n", 1);
    ck_assert_int_eq(receive(&a, h, "PUT", uri, "b.example", other), -1);
    ck_assert_int_eq(receive(&a, h, "PUT", uri, "b.example", NULL), -1);
    ck_assert_int_eq(receive(&a, h, "POST", uri, "b.example", content), -1);
    ck_assert_int_eq(receive(&a, h, "PUT", "/_matrix/federation/v1/send/txn%201?x=z", "b.example",
                             content), -1);
    ck_assert_int_eq(receive(&a, h, "PUT", uri, "c.example", content), -2);
    /* Another key can't stand in for a's. */
    cfg c2;
    hs_server m = make_server(&c2, "a.example:8448", "a_1", 8);
    ck_assert_int_eq(receive(&m, h, "PUT", uri, "b.example", content), -1);
    free(h);
    /* A GET signs no content. */
    h = fed_xmatrix_sign(&a, "b.example", "GET", "/_matrix/key/v2/server", NULL, &err);
    ck_assert_int_eq(receive(&a, h, "GET", "/_matrix/key/v2/server", "b.example", NULL), 0);
    json_t *empty = json_object();
    ck_assert_int_eq(receive(&a, h, "GET", "/_matrix/key/v2/server", "b.example", empty), -1);
    free(h);
    json_decref(empty);
    json_decref(other);
    json_decref(content);
    hs_signing_key_wipe(&a.key);
    hs_signing_key_wipe(&m.key);
}
END_TEST

/* ---- key responses ----------------------------------------------------------------- */

START_TEST(key_responses) {
    cfg c;
    hs_server b = make_server(&c, "b.example", "b_k", 3);
    hs_err err = {0};
    json_t *r = fed_own_server_keys(&b, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(fed_key_response_check(r, "b.example", &err), 0);
    /* Asked about another server: refused even though it is well signed. */
    ck_assert_int_eq(fed_key_response_check(r, "c.example", &err), -1);
    ck_assert_int_eq(err.status, 401);

    /* A notary's extra signature does not disturb the server's own. */
    cfg cn;
    hs_server n = make_server(&cn, "notary.example", "n_1", 4);
    json_t *signed_twice = json_deep_copy(r);
    ck_assert_int_eq(hs_json_sign(signed_twice, "notary.example", &n.key, &err), 0);
    ck_assert_int_eq(fed_key_response_check(signed_twice, "b.example", &err), 0);

    /* Tampering: another key slipped in, the validity stretched. */
    json_t *t = json_deep_copy(r);
    json_object_set_new(json_object_get(t, "verify_keys"), "ed25519:evil",
                        json_pack("{s:s}", "key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    ck_assert_int_eq(fed_key_response_check(t, "b.example", &err), -1);
    json_decref(t);
    t = json_deep_copy(r);
    json_object_set_new(t, "valid_until_ts", json_integer(9999999999999LL));
    ck_assert_int_eq(fed_key_response_check(t, "b.example", &err), -1);
    json_decref(t);

    /* Signed only by someone else's key: not self-signed. */
    t = json_deep_copy(r);
    json_object_del(json_object_get(t, "signatures"), "b.example");
    ck_assert_int_eq(hs_json_sign(t, "b.example", &n.key, &err), 0);
    ck_assert_int_eq(fed_key_response_check(t, "b.example", &err), -1);
    json_decref(t);

    /* Malformed shapes. */
    const char *bad[] = {
        "{}",
        "{\"server_name\":\"b.example\",\"verify_keys\":[],\"valid_until_ts\":1,\"signatures\":{}}",
        "{\"server_name\":\"b.example\",\"verify_keys\":{\"ed25519:x\":{\"key\":\"short\"}},"
        "\"valid_until_ts\":1,\"signatures\":{\"b.example\":{}}}",
        "{\"server_name\":\"b.example\",\"verify_keys\":{},\"valid_until_ts\":\"1\","
        "\"signatures\":{\"b.example\":{}}}",
        "[1]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *v = hs_json_parse(bad[i], strlen(bad[i]), &err);
        ck_assert_ptr_nonnull(v);
        ck_assert_msg(fed_key_response_check(v, "b.example", &err) == -1, "%s", bad[i]);
        json_decref(v);
    }
    json_decref(signed_twice);
    json_decref(r);
    hs_signing_key_wipe(&b.key);
    hs_signing_key_wipe(&n.key);
}
END_TEST

START_TEST(notary_answers) {
    cfg cb, cn, cx;
    hs_server b = make_server(&cb, "b.example", "b_k", 3);
    hs_server n = make_server(&cn, "notary.example", "n_1", 4);
    hs_server x = make_server(&cx, "notary.example", "n_1", 5); /* an impostor */
    hs_err err = {0};
    json_t *r = fed_own_server_keys(&b, &err);
    json_t *vouched = json_deep_copy(r), *forged = json_deep_copy(r);
    ck_assert_int_eq(hs_json_sign(vouched, "notary.example", &n.key, &err), 0);
    ck_assert_int_eq(hs_json_sign(forged, "notary.example", &x.key, &err), 0);

    char *pk = hs_signing_key_public_b64(&n.key);
    char *ids[] = {"ed25519:n_1"}, *keys[] = {pk};
    cfg_key_server with = {.server_name = "notary.example", .has_verify_keys = true,
                           .key_ids = {ids, 1}, .keys = {keys, 1}};
    cfg_key_server tls_only = {.server_name = "notary.example"};
    ck_assert_int_eq(fed_notary_entry_check(&with, vouched, "b.example", &err), 0);
    ck_assert_int_eq(fed_notary_entry_check(&with, forged, "b.example", &err), -1);
    ck_assert_int_eq(err.status, 401);
    ck_assert_int_eq(fed_notary_entry_check(&with, r, "b.example", &err), -1); /* unsigned by it */
    ck_assert_msg(strstr(err.msg, "not signed with a key configured"), "%s", err.msg);
    ck_assert_int_eq(fed_notary_entry_check(&with, vouched, "c.example", &err), -1);
    /* Without verify_keys, TLS vouches for the notary; the server's own
     * signature is still required. */
    ck_assert_int_eq(fed_notary_entry_check(&tls_only, r, "b.example", &err), 0);
    json_t *t = json_deep_copy(vouched);
    json_object_set_new(t, "valid_until_ts", json_integer(1));
    ck_assert_int_eq(fed_notary_entry_check(&tls_only, t, "b.example", &err), -1);
    ck_assert_int_eq(fed_notary_entry_check(&with, t, "b.example", &err), -1);
    json_decref(t);
    free(pk);
    json_decref(r);
    json_decref(vouched);
    json_decref(forged);
    hs_signing_key_wipe(&b.key);
    hs_signing_key_wipe(&n.key);
    hs_signing_key_wipe(&x.key);
}
END_TEST

int main(void) {
    Suite *s = suite_create("federation_xmatrix");
    TCase *t = tcase_create("xmatrix");
    tcase_add_test(t, spec_form);
    tcase_add_test(t, lenient_forms);
    tcase_add_test(t, malformed);
    tcase_add_test(t, sign_and_verify);
    tcase_add_test(t, key_responses);
    tcase_add_test(t, notary_answers);
    suite_add_tcase(s, t);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
