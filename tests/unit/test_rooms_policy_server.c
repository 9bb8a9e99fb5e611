/* test_rooms_policy_server.c — the pure parts of Policy Servers (rooms/
 * policy_server.h): which event is exempt, which m.room.policy contents are
 * valid, the signature check with the key from the state event, and asking
 * for a signature through an installed asker (a fake Policy Server here). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/signing.h"
#include "rooms/policy_server.h"
#include "rooms_fixture.h"

#define PS_NAME "ps.example.org"
#define MESSAGE                                                                            \
    "{'type':'m.room.message','sender':'@u:example.org','room_id':'!r:example.org',"       \
    "'content':{'body':'hi'},'depth':5,'origin_server_ts':1000,'hashes':{'sha256':'x'},"   \
    "'signatures':{'example.org':{'ed25519:a':'sig'}},'prev_events':['$p'],"               \
    "'auth_events':['$a1'],'unsigned':{'age':5}}"

/* ---- exempt ------------------------------------------------------------- */

START_TEST(exempt_only_policy_state_with_empty_key) {
    const char *yes = "{'type':'m.room.policy','state_key':''}";
    const char *no[] = {"{'type':'m.room.policy','state_key':'x'}", "{'type':'m.room.policy'}",
                        "{'type':'m.room.topic','state_key':''}",
                        "{'type':'m.room.policy','state_key':5}", "{'state_key':''}"};
    json_t *j = fx_json(yes);
    ck_assert(room_policy_exempt(j));
    json_decref(j);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        j = fx_json(no[i]);
        ck_assert_msg(!room_policy_exempt(j), "%s", no[i]);
        json_decref(j);
    }
}
END_TEST

/* ---- m.room.policy content ---------------------------------------------- */

/* A content naming via with the base64 (url-safe or not) of k's public key. */
static json_t *policy_content(const char *via, const hs_signing_key *k, bool url) {
    char *b64 = hs_b64_encode(k->pk, 32, url);
    ck_assert_ptr_nonnull(b64);
    json_t *c = json_pack("{s:s, s:{s:s}}", "via", via, "public_keys", "ed25519", b64);
    free(b64);
    return c;
}

START_TEST(parse_valid_contents) {
    hs_signing_key k;
    ck_assert_int_eq(hs_signing_key_generate(&k), 0);
    for (int url = 0; url < 2; url++) {
        json_t *c = policy_content(PS_NAME ":8448", &k, url);
        room_policy_server ps;
        memset(&ps, 0, sizeof ps);
        ck_assert(room_policy_parse(c, &ps));
        ck_assert_str_eq(ps.via, PS_NAME ":8448");
        ck_assert_mem_eq(ps.key, k.pk, 32);
        json_decref(c);
    }
}
END_TEST

START_TEST(parse_invalid_contents) {
    const char *bad[] = {
        "{}",
        "{'via':'ps.example.org'}",
        "{'public_keys':{'ed25519':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}}",
        "{'via':5,'public_keys':{'ed25519':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}}",
        "{'via':'not a server!','public_keys':{'ed25519':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}}",
        "{'via':'ps.example.org','public_keys':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}",
        "{'via':'ps.example.org','public_keys':{'ed25519':5}}",
        "{'via':'ps.example.org','public_keys':{'curve25519':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}}",
        "{'via':'ps.example.org','public_keys':{'ed25519':'AAAA'}}",
        "{'via':'ps.example.org','public_keys':{'ed25519':'not base64 at all!'}}",
        /* 33 bytes */
        "{'via':'ps.example.org','public_keys':{'ed25519':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *c = fx_json(bad[i]);
        room_policy_server ps;
        ck_assert_msg(!room_policy_parse(c, &ps), "%s", bad[i]);
        json_decref(c);
    }
    /* A 32-byte key of zeroes is well-formed. */
    json_t *c = fx_json(
        "{'via':'ps.example.org','public_keys':{'ed25519':'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}}");
    room_policy_server ps;
    ck_assert(room_policy_parse(c, &ps));
    json_decref(c);
}
END_TEST

/* ---- signatures and asking ---------------------------------------------- */

static hs_signing_key ps_key, other_key;
static int asked;
static enum { SIGN, SIGN_OTHER, EMPTY, FAIL } mode;

/* The fake Policy Server: signs the redacted PDU as ed25519:policy_server. */
static int fake_asker(void *arg, const char *via, const json_t *pdu, json_t **answer,
                      hs_err *err) {
    (void)arg;
    asked++;
    ck_assert_str_eq(via, PS_NAME);
    ck_assert_ptr_null(json_object_get(pdu, "unsigned"));
    if (mode == FAIL) return hs_err_set(err, 429, "M_LIMIT_EXCEEDED", "slow down");
    if (mode == EMPTY) return *answer = json_object(), 0;
    json_t *red = room_event_redact(fx_ver("11"), pdu);
    hs_err e = {0};
    ck_assert_int_eq(hs_json_sign(red, PS_NAME, mode == SIGN ? &ps_key : &other_key, &e), 0);
    *answer = json_incref(json_object_get(json_object_get(red, "signatures"), PS_NAME));
    *answer = json_pack("{s:o}", PS_NAME, *answer);
    json_decref(red);
    return 0;
}

static void keys(room_policy_server *ps) {
    hs_err e = {0};
    unsigned char seed[32], seed2[32];
    memset(seed, 7, sizeof seed), memset(seed2, 9, sizeof seed2);
    ck_assert_int_eq(hs_signing_key_from_seed(&ps_key, "policy_server", seed, &e), 0);
    ck_assert_int_eq(hs_signing_key_from_seed(&other_key, "policy_server", seed2, &e), 0);
    memset(ps, 0, sizeof *ps);
    strcpy(ps->via, PS_NAME);
    memcpy(ps->key, ps_key.pk, 32);
}

START_TEST(sign_and_check) {
    room_policy_server ps;
    keys(&ps);
    const room_version *v = fx_ver("11");
    json_t *ev = fx_json(MESSAGE);
    ck_assert(!room_policy_signed(v, ev, &ps));
    hs_err err = {0};
    /* No asker installed: unreachable. */
    room_policy_set_asker(NULL, NULL);
    ck_assert_int_eq(room_policy_sign(v, ev, &ps, &err), -1);
    ck_assert_int_eq(err.status, 502);
    room_policy_set_asker(fake_asker, NULL);
    /* Its own error, verbatim. */
    mode = FAIL, asked = 0, err = (hs_err){0};
    ck_assert_int_eq(room_policy_sign(v, ev, &ps, &err), -1);
    ck_assert_int_eq(err.status, 429);
    ck_assert_str_eq(err.errcode, "M_LIMIT_EXCEEDED");
    /* No signature, or one by a key other than m.room.policy's: 403. */
    mode = EMPTY, err = (hs_err){0};
    ck_assert_int_eq(room_policy_sign(v, ev, &ps, &err), -1);
    ck_assert_int_eq(err.status, 403);
    ck_assert_str_eq(err.errcode, "M_FORBIDDEN");
    mode = SIGN_OTHER, err = (hs_err){0};
    ck_assert_int_eq(room_policy_sign(v, ev, &ps, &err), -1);
    ck_assert_int_eq(err.status, 403);
    ck_assert(!room_policy_signed(v, ev, &ps));
    /* Signed: added beside the sender's signature, and it verifies. */
    mode = SIGN, err = (hs_err){0};
    ck_assert_int_eq(room_policy_sign(v, ev, &ps, &err), 0);
    ck_assert_int_eq(asked, 4);
    ck_assert(room_policy_signed(v, ev, &ps));
    json_t *sigs = json_object_get(ev, "signatures");
    ck_assert_ptr_nonnull(json_object_get(json_object_get(sigs, "example.org"), "ed25519:a"));
    ck_assert_ptr_nonnull(json_object_get(json_object_get(sigs, PS_NAME), ROOM_POLICY_KEY_ID));
    /* The signature covers the redacted event, as any event signature: the
     * content hash (which pins the content) and the other kept keys, not
     * unsigned nor, for a message, the content itself. */
    json_object_set_new(json_object_get(ev, "unsigned"), "age", json_integer(99));
    json_object_set_new(json_object_get(ev, "content"), "body", json_string("changed"));
    ck_assert(room_policy_signed(v, ev, &ps));
    json_object_set_new(json_object_get(ev, "hashes"), "sha256", json_string("y"));
    ck_assert(!room_policy_signed(v, ev, &ps));
    room_policy_set_asker(NULL, NULL);
    json_decref(ev);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_policy_server");
    TCase *tc = tcase_create("policy_server");
    tcase_add_test(tc, exempt_only_policy_state_with_empty_key);
    tcase_add_test(tc, parse_valid_contents);
    tcase_add_test(tc, parse_invalid_contents);
    tcase_add_test(tc, sign_and_check);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
