/* test_rooms_event.c — room versions, PDU parsing and validation, event IDs,
 * content hashes and the signing of local events (spec appendix vectors). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/signing.h"
#include "rooms_fixture.h"

/* A well-formed PDU of the given format, as text with ' for ". */
#define V4_MESSAGE                                                                         \
    "{'type':'m.room.message','sender':'@u:example.org','room_id':'!r:example.org',"       \
    "'content':{'body':'hi'},'depth':5,'origin_server_ts':1000,'hashes':{'sha256':'x'},"   \
    "'signatures':{'example.org':{'ed25519:a':'sig'}},'prev_events':['$p'],"               \
    "'auth_events':['$a1','$a2']}"

#define V1_MESSAGE                                                                         \
    "{'type':'m.room.message','sender':'@u:example.org','room_id':'!r:example.org',"       \
    "'event_id':'$ev1:example.org','content':{'body':'hi'},'depth':5,"                     \
    "'origin_server_ts':1000,'hashes':{'sha256':'x'},'signatures':{},"                     \
    "'prev_events':[['$p:example.org',{'sha256':'h'}]],'auth_events':[]}"

/* V4_MESSAGE with key set to the JSON value (given with ' for "). */
static json_t *v4_with(const char *key, const char *value) {
    json_t *j = fx_json(V4_MESSAGE);
    if (value)
        json_object_set_new(j, key, fx_json(value));
    else
        json_object_del(j, key);
    return j;
}

/* ---- room versions ----------------------------------------------------- */

START_TEST(versions_table) {
    const room_version *all = room_versions_all();
    size_t n = 0;
    for (; all[n].id; n++) ck_assert(all[n].stable);
    ck_assert_uint_eq(n, 12);
    ck_assert_str_eq(room_version_default()->id, "12");
    ck_assert_ptr_null(room_version_get("13"));
    ck_assert_ptr_null(room_version_get(NULL));
    ck_assert_int_eq(fx_ver("2")->event_format, ROOM_EVFMT_V1);
    ck_assert_int_eq(fx_ver("3")->event_format, ROOM_EVFMT_V3);
    ck_assert_int_eq(fx_ver("4")->event_format, ROOM_EVFMT_V4);
    ck_assert_int_eq(fx_ver("1")->state_res, ROOM_STATE_RES_V1);
    ck_assert_int_eq(fx_ver("11")->state_res, ROOM_STATE_RES_V2);
    ck_assert_int_eq(fx_ver("12")->state_res, ROOM_STATE_RES_V2_1);
    ck_assert(fx_ver("5")->special_case_aliases_auth && !fx_ver("6")->special_case_aliases_auth);
    ck_assert(!fx_ver("5")->strict_canonicaljson && fx_ver("6")->strict_canonicaljson);
    ck_assert(!fx_ver("6")->knock && fx_ver("7")->knock);
    ck_assert(!fx_ver("7")->restricted_join && fx_ver("8")->restricted_join);
    ck_assert(!fx_ver("8")->restricted_join_redaction && fx_ver("9")->restricted_join_redaction);
    ck_assert(!fx_ver("9")->knock_restricted && fx_ver("10")->knock_restricted);
    ck_assert(!fx_ver("9")->integer_power_levels && fx_ver("10")->integer_power_levels);
    ck_assert(!fx_ver("10")->implicit_room_creator && fx_ver("11")->implicit_room_creator);
    ck_assert(!fx_ver("11")->hydra && fx_ver("12")->hydra);
}
END_TEST

/* ---- parsing: good events ------------------------------------------------ */

START_TEST(parse_v4_fields) {
    room_event *e = fx_parse("10", fx_json(V4_MESSAGE));
    ck_assert_str_eq(e->type, "m.room.message");
    ck_assert_str_eq(e->sender, "@u:example.org");
    ck_assert_str_eq(e->room_id, "!r:example.org");
    ck_assert_ptr_null(e->state_key);
    ck_assert_ptr_null(e->membership);
    ck_assert_int_eq(e->depth, 5);
    ck_assert_int_eq(e->origin_server_ts, 1000);
    ck_assert_uint_eq(e->n_prev, 1);
    ck_assert_str_eq(e->prev_events[0], "$p");
    ck_assert_uint_eq(e->n_auth, 2);
    ck_assert_str_eq(e->auth_events[1], "$a2");
    ck_assert_uint_eq(strlen(e->event_id), 44);
    ck_assert_ptr_null(strchr(e->event_id, '/')); /* URL-safe from v4 */
    ck_assert_ptr_null(strchr(e->event_id, '+'));
    room_event_free(e);
}
END_TEST

START_TEST(parse_v1_fields) {
    room_event *e = fx_parse("1", fx_json(V1_MESSAGE));
    ck_assert_str_eq(e->event_id, "$ev1:example.org");
    ck_assert_uint_eq(e->n_prev, 1);
    ck_assert_str_eq(e->prev_events[0], "$p:example.org");
    ck_assert_uint_eq(e->n_auth, 0);
    room_event_free(e);
}
END_TEST

START_TEST(parse_member_and_redaction_fields) {
    json_t *j = v4_with("type", "'m.room.member'");
    json_object_set_new(j, "state_key", json_string("@u:example.org"));
    json_object_set_new(j, "content", fx_json("{'membership':'join'}"));
    room_event *e = fx_parse("10", j);
    ck_assert_str_eq(e->membership, "join");
    ck_assert_str_eq(e->state_key, "@u:example.org");
    room_event_free(e);
    /* v1–10: redacts at the top level; v11+: in content. */
    j = v4_with("type", "'m.room.redaction'");
    json_object_set_new(j, "redacts", json_string("$top"));
    json_object_set_new(j, "content", fx_json("{'redacts':'$inner'}"));
    e = fx_parse("10", json_incref(j));
    ck_assert_str_eq(e->redacts, "$top");
    room_event_free(e);
    e = fx_parse("11", j);
    ck_assert_str_eq(e->redacts, "$inner");
    room_event_free(e);
}
END_TEST

/* Vectors from Synapse's test suite (rust/src/events/utils.rs). */
#define SYNAPSE_EVENT                                                                      \
    "{'auth_events':['$gbHO7IPUHybc7ULFnT7P0r3iWlZFHGmr6zBfEYCUyKw',"                      \
    "'$hy1eZFYcgNxMFNNBgCD5fyOzyWRcBkxfNcrUI5ZpZlE','$Nt_z68EwFfPqBeHjzEHGsp461Z4EfNEzR-KH5bOYdOY'],"\
    "'prev_events':['$4FbpZrgPQTwoLD9H5y7jcikucCypUOn78mXhQX7WliY'],'type':'m.room.message',"  \
    "'room_id':'!DHmIIVvxFASSFgDGzr:localhost:8008','sender':'@tester_b:localhost:8008',"   \
    "'content':{'msgtype':'m.text','body':'invited people can see history','m.mentions':{}}," \
    "'depth':24,'origin':'localhost:8008','origin_server_ts':1731769874137,"                \
    "'hashes':{'sha256':'FoYV1w3TW/B2mVT0gX2/BZKpCwrrvGXqXFdUhN9LZYU'},"                     \
    "'signatures':{'localhost:8008':{'ed25519:a_phSE':'G8cfk/m97sndxMNrEZ2nMMSXkVeJE05G7if4JiV" \
    "zAwGfD3TwnF/jfSHt2acWrpNqv/aEhZug3WLofc2id+rVBw'}},'unsigned':{'age_ts':1731769874137}}"

START_TEST(event_id_vectors) {
    room_event *e = fx_parse("10", fx_json(SYNAPSE_EVENT));
    ck_assert_str_eq(e->event_id, "$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o");
    room_event_free(e);
    e = fx_parse("3", fx_json(SYNAPSE_EVENT));
    ck_assert_str_eq(e->event_id, "$zRz9jjiT9wZc3Hl9ij/74aCmTjqV3YMlj9sj3Uqxg6o");
    room_event_free(e);
    /* The redacted copy has the same ID: the ID covers only the redacted form. */
    json_t *j = fx_json(SYNAPSE_EVENT);
    json_t *red = room_event_redact(fx_ver("10"), j);
    hs_err err = {0};
    char *id = room_event_compute_id(fx_ver("10"), red, &err);
    ck_assert_str_eq(id, "$zRz9jjiT9wZc3Hl9ij_74aCmTjqV3YMlj9sj3Uqxg6o");
    free(id);
    ck_assert_ptr_null(room_event_compute_id(fx_ver("2"), j, &err));
    json_decref(red);
    json_decref(j);
}
END_TEST

START_TEST(v12_create_room_id) {
    /* Synapse's vector: a v12 create event and the room ID it names. */
    json_t *j = fx_json(
        "{'auth_events':[],'prev_events':[],'type':'m.room.create','sender':'@erikj:jki.re',"
        "'content':{'room_version':'12','predecessor':{'room_id':'!VuNGkDTdbMOOxSmuDa:jki.re'}},"
        "'depth':1,'state_key':'','origin_server_ts':1775568141481,"
        "'hashes':{'sha256':'qBX+glsKvogXFrvsEN0eh13pO2kpuE6o/b4yREPtOqw'},"
        "'signatures':{'jki.re':{'ed25519:auto':'n/4gHQRagk3r1r24L/7a+oaMMf9cysVfQRYdjpDZcf4ppkV"
        "ym33rhTW18Vy4zMa1L5nsWLkxsBvbrRRDYUOhBQ'}},'unsigned':{'age_ts':1775568141481}}");
    room_event *e = fx_parse("12", j);
    ck_assert_str_eq(e->room_id, "!BeXKh925K_M46DwsuJFR0EyBpE1P7CFUDGuWW4xw55Y");
    ck_assert_str_eq(e->event_id + 1, e->room_id + 1);
    room_event_free(e);
}
END_TEST

START_TEST(v12_room_ids) {
    /* Non-create events need a hash room ID; a domain one is for v1–11. */
    fx_parse_fails("12", fx_json(V4_MESSAGE), "'room_id' is not a valid room ID");
    json_t *j = v4_with("room_id", "'!BeXKh925K_M46DwsuJFR0EyBpE1P7CFUDGuWW4xw55Y'");
    room_event_free(fx_parse("12", json_incref(j)));
    fx_parse_fails("11", j, "'room_id' is not a valid room ID");
    fx_parse_fails("12", v4_with("room_id", NULL), "Missing required key 'room_id'");
}
END_TEST

START_TEST(big_ints_before_v6) {
    /* v1–5 do not enforce canonical JSON's integer range; v6+ do. */
    json_t *j = v4_with("depth", "9007199254740993");
    room_event *e = fx_parse("5", json_incref(j));
    ck_assert_int_eq(e->depth, 9007199254740993LL);
    room_event_free(e);
    fx_parse_fails("6", j, "integer outside");
    j = fx_json(V4_MESSAGE);
    json_object_set_new(json_object_get(j, "content"), "n", json_integer(-9007199254740992LL));
    room_event_free(fx_parse("4", json_incref(j)));
    fx_parse_fails("6", j, "content.n: integer outside");
    j = fx_json(V4_MESSAGE);
    json_object_set_new(json_object_get(j, "content"), "n", json_integer(9007199254740991LL));
    room_event_free(fx_parse("11", j)); /* the limit itself is fine */
}
END_TEST

START_TEST(floats_rejected) {
    json_t *j = fx_json(V4_MESSAGE);
    json_object_set_new(json_object_get(j, "content"), "f", fx_json("[1, {'x': 1.5}]"));
    fx_parse_fails("6", json_incref(j), "content.f[1].x: floats are not allowed");
    fx_parse_fails("5", j, "floats are not allowed");
    fx_parse_fails("12", v4_with("origin_server_ts", "1.0"), "origin_server_ts: floats");
}
END_TEST

/* ---- parsing: rejections, one per rule ----------------------------------- */

START_TEST(required_keys) {
    const char *keys[] = {"type", "sender", "room_id", "content", "depth", "origin_server_ts",
                          "hashes", "signatures", "prev_events", "auth_events"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char want[64];
        snprintf(want, sizeof want, "'%s'", keys[i]);
        fx_parse_fails("10", v4_with(keys[i], NULL), want);
    }
    json_t *j = fx_json(V1_MESSAGE);
    json_object_del(j, "event_id");
    fx_parse_fails("1", j, "Missing required key 'event_id'");
}
END_TEST

START_TEST(key_types) {
    fx_parse_fails("10", v4_with("type", "5"), "'type' must be a string");
    fx_parse_fails("10", v4_with("sender", "{}"), "'sender' must be a string");
    fx_parse_fails("10", v4_with("state_key", "null"), "'state_key' must be a string");
    fx_parse_fails("10", v4_with("content", "[]"), "'content' must be an object");
    fx_parse_fails("10", v4_with("depth", "'5'"), "'depth' must be an integer");
    fx_parse_fails("10", v4_with("depth", "-1"), "'depth' is out of range");
    fx_parse_fails("10", v4_with("origin_server_ts", "true"), "'origin_server_ts' must be");
    fx_parse_fails("10", v4_with("hashes", "{'sha256':5}"), "'hashes' must be an object of str");
    fx_parse_fails("10", v4_with("hashes", "{'sha512':'x'}"), "'hashes' has no sha256");
    fx_parse_fails("10", v4_with("signatures", "[]"), "'signatures' must be an object");
    fx_parse_fails("10", v4_with("signatures", "{'a.org':{'k':1}}"), "signatures.a.org must be");
    room_event_free(fx_parse("10", v4_with("unsigned", "5"))); /* outside every hash */
    fx_parse_fails("10", v4_with("prev_events", "{}"), "'prev_events' must be an array");
    fx_parse_fails("10", v4_with("auth_events", "[5]"), "auth_events[0] must be an event ID");
    fx_parse_fails("10", v4_with("prev_events", "['nodollar']"), "prev_events[0] must be");
    fx_parse_fails("10", v4_with("prev_events", "[['$x',{}]]"), "prev_events[0] must be");
    /* v1–2 want [id, hashes] pairs, and only those. */
    json_t *j = fx_json(V1_MESSAGE);
    json_object_set_new(j, "prev_events", fx_json("['$p:example.org']"));
    fx_parse_fails("2", j, "prev_events[0] must be an [event ID, hashes] pair");
    j = fx_json(V1_MESSAGE);
    json_object_set_new(j, "auth_events", fx_json("[['$p:example.org',{'sha256':1}]]"));
    fx_parse_fails("2", j, "auth_events[0] must be an [event ID, hashes] pair");
    fx_parse_fails("10", fx_json("[]"), "must be a JSON object");
}
END_TEST

START_TEST(reference_counts) {
    json_t *many = json_array();
    for (int i = 0; i < 21; i++) json_array_append_new(many, json_sprintf("$e%d", i));
    json_t *j = fx_json(V4_MESSAGE);
    json_object_set(j, "prev_events", many);
    fx_parse_fails("10", j, "'prev_events' has more than 20 entries");
    json_array_remove(many, 20);
    j = fx_json(V4_MESSAGE);
    json_object_set(j, "prev_events", many);
    room_event_free(fx_parse("10", j));
    j = fx_json(V4_MESSAGE);
    json_object_set(j, "auth_events", many);
    fx_parse_fails("10", j, "'auth_events' has more than 10 entries");
    json_decref(many);
}
END_TEST

START_TEST(event_id_by_format) {
    fx_parse_fails("3", v4_with("event_id", "'$x:example.org'"), "must not carry 'event_id'");
    json_t *j = fx_json(V1_MESSAGE);
    json_object_set_new(j, "event_id", json_string("$nodomain"));
    fx_parse_fails("1", j, "'event_id' is not a valid event ID");
    j = fx_json(V1_MESSAGE);
    json_object_set_new(j, "event_id", json_string("$x:bad_server"));
    fx_parse_fails("1", j, "'event_id' is not a valid event ID");
}
END_TEST

START_TEST(id_grammar) {
    fx_parse_fails("10", v4_with("sender", "'u:example.org'"), "not a valid user ID");
    fx_parse_fails("10", v4_with("sender", "'@u'"), "not a valid user ID");
    fx_parse_fails("10", v4_with("sender", "'@u:'"), "not a valid user ID");
    fx_parse_fails("10", v4_with("sender", "'@u:exa mple.org'"), "not a valid user ID");
    fx_parse_fails("10", v4_with("sender", "'@u:example.org:99999x'"), "not a valid user ID");
    fx_parse_fails("10", v4_with("sender", "'@u:[::1'"), "not a valid user ID");
    fx_parse_fails("10", v4_with("room_id", "'#r:example.org'"), "not a valid room ID");
    fx_parse_fails("10", v4_with("room_id", "'!r'"), "not a valid room ID");
    /* Historical user IDs (odd localparts) must still be accepted. */
    const char *ok[] = {"'@:example.org'", "'@Ünïcode CAPS:example.org'", "'@u:[::1]:8448'",
                        "'@u:1.2.3.4'", "'@u:example.org:8448'"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        room_event_free(fx_parse("10", v4_with("sender", ok[i])));
    room_event_free(fx_parse("10", v4_with("room_id", "'!:example.org'")));
}
END_TEST

START_TEST(byte_limits) {
    char big[300];
    memset(big, 'a', sizeof big);
    /* 255 is the limit for type and state_key. */
    big[255] = '\0';
    json_t *j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "type", json_string(big));
    json_object_set_new(j, "state_key", json_string(big));
    room_event *e = fx_parse("10", j);
    ck_assert_ptr_null(e->oversized);
    room_event_free(e);
    big[255] = 'a';
    big[256] = '\0';
    j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "type", json_string(big));
    fx_parse_fails("10", j, "'type' is longer than 255 codepoints");
    j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "state_key", json_string(big));
    fx_parse_fails("11", j, "'state_key' is longer than 255 bytes");
    /* 128 two-byte characters: 128 code points but 256 bytes. From v11 the
     * event is dropped; before, Synapse counted code points, so it is kept
     * (the room's DAG stays whole) but rejected by the auth checks. */
    char wide[260] = "";
    for (int i = 0; i < 128; i++) strcat(wide, "\xc3\xa9");
    j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "state_key", json_string(wide));
    fx_parse_fails("11", j, "'state_key' is longer than 255 bytes");
    j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "state_key", json_string(wide));
    e = fx_parse("10", j);
    ck_assert_str_eq(e->oversized, "state_key");
    hs_err aerr = {0};
    ck_assert_int_eq(room_auth_check(e, NULL, NULL, &aerr), -1);
    ck_assert_int_eq(aerr.status, 403);
    ck_assert_ptr_nonnull(strstr(aerr.msg, "'state_key' is longer than 255 bytes"));
    room_event_free(e);
    char sender[300] = "@";
    memset(sender + 1, 'u', 243);
    strcpy(sender + 244, ":example.org"); /* 256 bytes */
    j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "sender", json_string(sender));
    fx_parse_fails("10", j, "'sender' is longer than 255 codepoints");
    j = fx_json(V4_MESSAGE);
    json_object_set_new(j, "state_key", json_stringn("a\0b", 3));
    fx_parse_fails("10", j, "'state_key' contains U+0000");
}
END_TEST

START_TEST(size_limit) {
    /* Pad the content so the canonical event is exactly 65536 bytes. */
    json_t *j = fx_json(V4_MESSAGE);
    json_t *content = json_object_get(j, "content");
    json_object_set_new(content, "body", json_string(""));
    char *canon = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    size_t base = strlen(canon);
    free(canon);
    char *pad = malloc(70000);
    memset(pad, 'x', 70000);
    pad[65536 - base] = '\0';
    json_object_set_new(content, "body", json_string(pad));
    room_event_free(fx_parse("10", json_incref(j)));
    pad[65536 - base] = 'x';
    pad[65537 - base] = '\0';
    json_object_set_new(content, "body", json_string(pad));
    hs_err err = {0};
    room_event *e = room_event_parse(fx_ver("10"), j, &err);
    json_decref(j);
    ck_assert_ptr_null(e);
    ck_assert_int_eq(err.status, 413);
    ck_assert_str_eq(err.errcode, "M_TOO_LARGE");
    ck_assert_ptr_nonnull(strstr(err.msg, "over the 65536 limit"));
    free(pad);
}
END_TEST

START_TEST(v12_create_without_room_id) {
    json_t *j = v4_with("type", "'m.room.create'");
    json_object_set_new(j, "state_key", json_string(""));
    json_object_del(j, "room_id");
    room_event *e = fx_parse("12", json_incref(j));
    ck_assert_uint_eq(strlen(e->room_id), 44);
    ck_assert_int_eq(e->room_id[0], '!');
    ck_assert_str_eq(e->room_id + 1, e->event_id + 1);
    room_event_free(e);
    /* Before v12 a create event needs its room_id like any other. */
    fx_parse_fails("11", j, "Missing required key 'room_id'");
    /* A stray room_id does not change the ID (it is not hashed) and is left
     * for auth rule 1.2 to reject. */
    j = v4_with("type", "'m.room.create'");
    json_object_set_new(j, "state_key", json_string(""));
    json_t *k = json_deep_copy(j);
    json_object_del(k, "room_id");
    room_event *with = fx_parse("12", j), *without = fx_parse("12", k);
    ck_assert_str_eq(with->event_id, without->event_id);
    ck_assert_str_eq(with->room_id, without->room_id);
    room_event_free(with);
    room_event_free(without);
}
END_TEST

START_TEST(parse_null_version) {
    hs_err err = {0};
    json_t *j = fx_json(V4_MESSAGE);
    ck_assert_ptr_null(room_event_parse(NULL, j, &err));
    ck_assert_str_eq(err.errcode, "M_UNSUPPORTED_ROOM_VERSION");
    json_decref(j);
}
END_TEST

/* ---- hashes and signing -------------------------------------------------- */

static hs_signing_key spec_key(void) {
    unsigned char seed[32];
    size_t n = 0;
    const char *b64 = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
    ck_assert_int_eq(hs_b64_decode(b64, strlen(b64), seed, 32, &n, false), 0);
    hs_signing_key k;
    hs_err err = {0};
    ck_assert_int_eq(hs_signing_key_from_seed(&k, "1", seed, &err), 0);
    return k;
}

static void assert_json_eq(json_t *got, json_t *want) {
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
        fprintf(stderr, "got  %s\nwant %s\n", g, w);
        free(g);
        free(w);
    }
    ck_assert(json_equal(got, want));
}

/* The spec appendix's "Event Signing" vectors (room versions 1–10 keep
 * "origin" when redacting, which the signatures cover). */
START_TEST(spec_signing_minimal) {
    hs_signing_key k = spec_key();
    json_t *ev = fx_json(
        "{'room_id':'!x:domain','sender':'@a:domain','origin':'domain','origin_server_ts':1000000,"
        "'signatures':{},'hashes':{},'type':'X','content':{},'prev_events':[],'auth_events':[],"
        "'depth':3,'unsigned':{'age_ts':1000000}}");
    hs_err err = {0};
    ck_assert_int_eq(room_event_finish(fx_ver("10"), ev, "domain", &k, &err), 0);
    json_t *want = fx_json(
        "{'auth_events':[],'content':{},'depth':3,'hashes':{'sha256':"
        "'5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos'},'origin':'domain','origin_server_ts':"
        "1000000,'prev_events':[],'room_id':'!x:domain','sender':'@a:domain','signatures':{"
        "'domain':{'ed25519:1':'KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5K"
        "LjAWbOoMszkwsQma+lYAg'}},'type':'X','unsigned':{'age_ts':1000000}}");
    assert_json_eq(ev, want);
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), 0);
    json_decref(want);
    json_decref(ev);
}
END_TEST

START_TEST(spec_signing_redactable) {
    hs_signing_key k = spec_key();
    json_t *ev = fx_json(
        "{'content':{'body':'Here is the message content'},'event_id':'$0:domain',"
        "'origin':'domain','origin_server_ts':1000000,'type':'m.room.message','room_id':"
        "'!r:domain','sender':'@u:domain','signatures':{},'unsigned':{'age_ts':1000000}}");
    hs_err err = {0};
    /* v1 keeps the event_id the caller chose. */
    ck_assert_int_eq(room_event_finish(fx_ver("1"), ev, "domain", &k, &err), 0);
    json_t *want = fx_json(
        "{'content':{'body':'Here is the message content'},'event_id':'$0:domain','hashes':{"
        "'sha256':'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g'},'origin':'domain',"
        "'origin_server_ts':1000000,'type':'m.room.message','room_id':'!r:domain','sender':"
        "'@u:domain','signatures':{'domain':{'ed25519:1':'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6"
        "aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA'}},'unsigned':{'age_ts':1000000}}");
    assert_json_eq(ev, want);
    /* The signature covers the redacted form: it verifies on it. */
    json_t *red = room_event_redact(fx_ver("1"), ev);
    ck_assert_int_eq(hs_json_verify(red, "domain", "ed25519:1", k.pk, &err), 0);
    json_decref(red);
    json_decref(want);
    json_decref(ev);
}
END_TEST

START_TEST(finish_v1_sets_event_id) {
    hs_signing_key k = spec_key();
    json_t *ev = fx_json(V1_MESSAGE);
    json_object_del(ev, "event_id");
    json_object_del(ev, "hashes");
    json_object_del(ev, "signatures");
    hs_err err = {0};
    ck_assert_int_eq(room_event_finish(fx_ver("2"), ev, "example.org", &k, &err), 0);
    const char *id = json_string_value(json_object_get(ev, "event_id"));
    ck_assert_ptr_nonnull(id);
    ck_assert_int_eq(id[0], '$');
    ck_assert_str_eq(strchr(id, ':'), ":example.org");
    room_event *e = fx_parse("2", json_incref(ev));
    ck_assert_str_eq(e->event_id, id);
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), 0);
    room_event_free(e);
    json_decref(ev);
}
END_TEST

START_TEST(finish_v12_create) {
    hs_signing_key k = spec_key();
    json_t *ev = fx_json(
        "{'type':'m.room.create','state_key':'','sender':'@a:example.org','room_id':'!old:x',"
        "'content':{'room_version':'12'},'depth':1,'origin_server_ts':5,'prev_events':[],"
        "'auth_events':[]}");
    hs_err err = {0};
    ck_assert_int_eq(room_event_finish(fx_ver("12"), ev, "example.org", &k, &err), 0);
    ck_assert_ptr_null(json_object_get(ev, "room_id"));
    room_event *e = fx_parse("12", json_incref(ev));
    ck_assert_str_eq(e->room_id + 1, e->event_id + 1);
    json_t *red = room_event_redact(fx_ver("12"), ev);
    ck_assert_int_eq(hs_json_verify(red, "example.org", k.key_id, k.pk, &err), 0);
    json_decref(red);
    room_event_free(e);
    json_decref(ev);
}
END_TEST

START_TEST(content_hash_check) {
    hs_signing_key k = spec_key();
    json_t *ev = fx_json(V4_MESSAGE);
    hs_err err = {0};
    ck_assert_int_eq(room_event_finish(fx_ver("10"), ev, "example.org", &k, &err), 0);
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), 0);
    /* unsigned and signatures are outside the hash; content is inside. */
    json_object_set_new(ev, "unsigned", fx_json("{'age':5}"));
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), 0);
    json_object_set_new(json_object_get(ev, "content"), "body", json_string("changed"));
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), -1);
    ck_assert_int_eq(err.status, 401);
    json_object_set_new(ev, "hashes", fx_json("{'sha256':'not base64!'}"));
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), -1);
    json_object_del(ev, "hashes");
    ck_assert_int_eq(room_event_check_content_hash(ev, &err), -1);
    json_decref(ev);
}
END_TEST

START_TEST(reference_hash_ignores_unsigned_and_signatures) {
    json_t *a = fx_json(V4_MESSAGE), *b = fx_json(V4_MESSAGE);
    json_object_set_new(b, "unsigned", fx_json("{'age':1}"));
    json_object_set_new(b, "signatures", fx_json("{'other.org':{'ed25519:x':'y'}}"));
    json_object_set_new(json_object_get(b, "content"), "body", json_string("redacted away"));
    unsigned char ha[32], hb[32];
    hs_err err = {0};
    ck_assert_int_eq(room_event_reference_hash(fx_ver("10"), a, ha, &err), 0);
    ck_assert_int_eq(room_event_reference_hash(fx_ver("10"), b, hb, &err), 0);
    ck_assert_mem_eq(ha, hb, 32);
    json_object_set_new(b, "depth", json_integer(6));
    ck_assert_int_eq(room_event_reference_hash(fx_ver("10"), b, hb, &err), 0);
    ck_assert(memcmp(ha, hb, 32) != 0);
    json_decref(a);
    json_decref(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_event");
    TCase *tc = tcase_create("versions");
    tcase_add_test(tc, versions_table);
    suite_add_tcase(s, tc);
    tc = tcase_create("parse");
    tcase_add_test(tc, parse_v4_fields);
    tcase_add_test(tc, parse_v1_fields);
    tcase_add_test(tc, parse_member_and_redaction_fields);
    tcase_add_test(tc, event_id_vectors);
    tcase_add_test(tc, v12_create_room_id);
    tcase_add_test(tc, v12_room_ids);
    tcase_add_test(tc, big_ints_before_v6);
    tcase_add_test(tc, floats_rejected);
    tcase_add_test(tc, required_keys);
    tcase_add_test(tc, key_types);
    tcase_add_test(tc, reference_counts);
    tcase_add_test(tc, event_id_by_format);
    tcase_add_test(tc, id_grammar);
    tcase_add_test(tc, byte_limits);
    tcase_add_test(tc, size_limit);
    tcase_add_test(tc, v12_create_without_room_id);
    tcase_add_test(tc, parse_null_version);
    suite_add_tcase(s, tc);
    tc = tcase_create("hashing");
    tcase_add_test(tc, spec_signing_minimal);
    tcase_add_test(tc, spec_signing_redactable);
    tcase_add_test(tc, finish_v1_sets_event_id);
    tcase_add_test(tc, finish_v12_create);
    tcase_add_test(tc, content_hash_check);
    tcase_add_test(tc, reference_hash_ignores_unsigned_and_signatures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
