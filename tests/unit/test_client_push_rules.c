/* test_client_push_rules.c — the push rule evaluator: every condition kind
 * with the spec's examples, glob and word-boundary matching, dotted paths
 * with escapes, every server-default rule, and merging a user's rules and
 * changes with the defaults. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/push_rules.h"

#define ME "@alice:example.org"

static json_t *J(const char *text) {
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    ck_assert_msg(v != NULL, "bad test JSON: %s: %s", e.text, text);
    return v;
}

static push_ctx ctx(long long members) {
    push_ctx c = {.user_id = ME, .display_name = "Alice Liddell", .member_count = members,
                  .sender_power = 0, .power_loaded = true};
    return c;
}

/* Does condition (JSON) match event (JSON)? */
static int cond(const char *cond_text, const char *event_text, push_ctx *c) {
    json_t *cj = J(cond_text), *ej = J(event_text);
    int m = push_condition_matches(cj, ej, c);
    json_decref(cj);
    json_decref(ej);
    return m;
}

static int match(const char *cond_text, const char *event_text) {
    push_ctx c = ctx(3);
    return cond(cond_text, event_text, &c);
}

/* ---- glob ---- */

START_TEST(glob_whole) {
    ck_assert(push_glob_match("lunc?*", "Lunch plans", PUSH_GLOB_WHOLE, false));
    ck_assert(push_glob_match("lunc?*", "LUNCH", PUSH_GLOB_WHOLE, false));
    ck_assert(!push_glob_match("lunc?*", " lunch", PUSH_GLOB_WHOLE, false));
    ck_assert(!push_glob_match("lunc?*", "lunc", PUSH_GLOB_WHOLE, false));
    ck_assert(push_glob_match("*", "", PUSH_GLOB_WHOLE, false));
    ck_assert(push_glob_match("", "", PUSH_GLOB_WHOLE, false));
    ck_assert(!push_glob_match("", "x", PUSH_GLOB_WHOLE, false));
    ck_assert(push_glob_match("a*b*c", "aXXbYYc", PUSH_GLOB_WHOLE, false));
    ck_assert(!push_glob_match("a*b*c", "aXXbYYcd", PUSH_GLOB_WHOLE, false));
    ck_assert(push_glob_match("m.room.*", "m.room.message", PUSH_GLOB_WHOLE, false));
    ck_assert(!push_glob_match("m.room.message", "m.room.messages", PUSH_GLOB_WHOLE, false));
    /* '?' is one character, not one byte; case folding beyond ASCII. */
    ck_assert(push_glob_match("caf?", "café", PUSH_GLOB_WHOLE, false));
    ck_assert(!push_glob_match("caf??", "café", PUSH_GLOB_WHOLE, false));
    ck_assert(push_glob_match("éric", "ÉRIC", PUSH_GLOB_WHOLE, false));
    /* literal: the display name "B*b" is not a pattern */
    ck_assert(!push_glob_match("B*b", "Bob", PUSH_GLOB_WHOLE, true));
    ck_assert(push_glob_match("B*b", "b*B", PUSH_GLOB_WHOLE, true));
    /* a pattern that backtracks exponentially in naive matchers */
    char value[4001];
    memset(value, 'a', 4000);
    value[4000] = 0;
    ck_assert(!push_glob_match("*a*a*a*a*a*a*a*a*a*a*b", value, PUSH_GLOB_WHOLE, false));
}
END_TEST

START_TEST(glob_words) {
    /* The spec's content.body examples for "ex*ple". */
    ck_assert(push_glob_match("ex*ple", "An example event.", PUSH_GLOB_WORDS, false));
    ck_assert(push_glob_match("ex*ple", "exple", PUSH_GLOB_WORDS, false));
    ck_assert(push_glob_match("ex*ple", "An exciting triple-whammy", PUSH_GLOB_WORDS, false));
    ck_assert(!push_glob_match("ex*ple", "Anexample", PUSH_GLOB_WORDS, false));
    ck_assert(!push_glob_match("ex*ple", "examples", PUSH_GLOB_WORDS, false));
    ck_assert(push_glob_match("cake", "I like CAKE!", PUSH_GLOB_WORDS, false));
    ck_assert(!push_glob_match("cake", "cupcakes", PUSH_GLOB_WORDS, false));
    ck_assert(push_glob_match("cake*lie", "the cake is a lie", PUSH_GLOB_WORDS, false));
    ck_assert(push_glob_match("alice", "alice_", PUSH_GLOB_WORDS, false) == false);
    ck_assert(push_glob_match("alice", "hi alice: 1", PUSH_GLOB_WORDS, false));
    /* A non-word first character still matches after a letter. */
    ck_assert(push_glob_match("@room", "hey@room", PUSH_GLOB_WORDS, false));
    ck_assert(push_glob_match("@room", "@room", PUSH_GLOB_WORDS, false));
    ck_assert(!push_glob_match("@room", "@roomy", PUSH_GLOB_WORDS, false));
}
END_TEST

/* ---- dotted paths ---- */

START_TEST(dotted_paths) {
    json_t *ev = J("{\"content\": {\"m.relates_to\": {\"rel_type\": \"m.replace\"},"
                   " \"m\\\\foo\": 1, \"a\\\\x\": 2, \"body\": \"hi\", \"n\": {\"a.b\": {\"c\": 3}}}}");
    ck_assert_str_eq(json_string_value(push_event_property(ev, "content.m\\.relates_to.rel_type")),
                     "m.replace");
    ck_assert_ptr_null(push_event_property(ev, "content.m.relates_to.rel_type"));
    ck_assert_int_eq(json_integer_value(push_event_property(ev, "content.m\\\\foo")), 1);
    /* "\x" is a backslash and an x. */
    ck_assert_int_eq(json_integer_value(push_event_property(ev, "content.a\\x")), 2);
    ck_assert_int_eq(json_integer_value(push_event_property(ev, "content.n.a\\.b.c")), 3);
    ck_assert_ptr_null(push_event_property(ev, "content.body.length"));
    ck_assert_ptr_null(push_event_property(ev, "nothing"));
    json_decref(ev);
}
END_TEST

/* ---- conditions ---- */

#define TOPIC(t) "{\"type\": \"m.room.topic\", \"state_key\": \"\", \"content\": {\"topic\": " t "}}"

START_TEST(cond_event_match) {
    const char *c = "{\"kind\": \"event_match\", \"key\": \"content.topic\", \"pattern\": \"lunc?*\"}";
    ck_assert_int_eq(match(c, TOPIC("\"Lunch plans\"")), 1);
    ck_assert_int_eq(match(c, TOPIC("\"LUNCH\"")), 1);
    ck_assert_int_eq(match(c, TOPIC("\" lunch\"")), 0);
    ck_assert_int_eq(match(c, TOPIC("\"lunc\"")), 0);
    ck_assert_int_eq(match(c, TOPIC("null")), 0);
    /* absent or not a string: no match even for "*" */
    const char *star = "{\"kind\": \"event_match\", \"key\": \"content.topic\", \"pattern\": \"*\"}";
    ck_assert_int_eq(match(star, "{\"type\": \"m.room.topic\", \"content\": {}}"), 0);
    ck_assert_int_eq(match(star, TOPIC("5")), 0);
    ck_assert_int_eq(match(star, TOPIC("\"\"")), 1);
    /* content.body matches words */
    const char *body = "{\"kind\": \"event_match\", \"key\": \"content.body\", \"pattern\": \"ex*ple\"}";
    ck_assert_int_eq(match(body, "{\"content\": {\"body\": \"An example event.\"}}"), 1);
    ck_assert_int_eq(match(body, "{\"content\": {\"body\": \"An exciting triple-whammy\"}}"), 1);
    ck_assert_int_eq(match(body, "{\"content\": {\"body\": \"Anexample\"}}"), 0);
    /* other keys match whole */
    const char *type = "{\"kind\": \"event_match\", \"key\": \"type\", \"pattern\": \"m.room\"}";
    ck_assert_int_eq(match(type, "{\"type\": \"m.room.message\"}"), 0);
    /* malformed: no key, no pattern */
    ck_assert_int_eq(match("{\"kind\": \"event_match\", \"pattern\": \"*\"}", TOPIC("\"x\"")), 0);
    ck_assert_int_eq(match("{\"kind\": \"event_match\", \"key\": \"type\"}", TOPIC("\"x\"")), 0);
}
END_TEST

#define CREATE(f)                                                                              \
    "{\"type\": \"m.room.create\", \"state_key\": \"\", \"content\": {\"creator\": "           \
    "\"@example:example.org\", \"m.federate\": " f ", \"room_version\": \"1\"}}"

START_TEST(cond_property_is) {
    const char *c = "{\"kind\": \"event_property_is\", \"key\": \"content.m\\\\.federate\", \"value\": true}";
    ck_assert_int_eq(match(c, CREATE("true")), 1);
    ck_assert_int_eq(match(c, CREATE("\"true\"")), 0);
    ck_assert_int_eq(match(c, CREATE("1")), 0);
    ck_assert_int_eq(match(c, CREATE("false")), 0);
    ck_assert_int_eq(match(c, "{\"type\": \"m.room.create\", \"content\": {}}"), 0);
    const char *n = "{\"kind\": \"event_property_is\", \"key\": \"content.n\", \"value\": 42}";
    ck_assert_int_eq(match(n, "{\"content\": {\"n\": 42}}"), 1);
    ck_assert_int_eq(match(n, "{\"content\": {\"n\": \"42\"}}"), 0);
    const char *nul = "{\"kind\": \"event_property_is\", \"key\": \"content.n\", \"value\": null}";
    ck_assert_int_eq(match(nul, "{\"content\": {\"n\": null}}"), 1);
    ck_assert_int_eq(match(nul, "{\"content\": {}}"), 0);
    const char *s = "{\"kind\": \"event_property_is\", \"key\": \"content.s\", \"value\": \"Ab\"}";
    ck_assert_int_eq(match(s, "{\"content\": {\"s\": \"Ab\"}}"), 1);
    ck_assert_int_eq(match(s, "{\"content\": {\"s\": \"ab\"}}"), 0); /* exact, not glob */
    /* compound values never match */
    const char *o = "{\"kind\": \"event_property_is\", \"key\": \"content.o\", \"value\": {}}";
    ck_assert_int_eq(match(o, "{\"content\": {\"o\": {}}}"), 0);
    const char *a = "{\"kind\": \"event_property_is\", \"key\": \"content.o\", \"value\": 1}";
    ck_assert_int_eq(match(a, "{\"content\": {\"o\": [1]}}"), 0);
}
END_TEST

#define ALIASES(a)                                                                            \
    "{\"type\": \"m.room.canonical_alias\", \"state_key\": \"\", \"content\": {\"alias\": "    \
    "\"#somewhere:localhost\", \"alt_aliases\": " a "}}"

START_TEST(cond_property_contains) {
    const char *c = "{\"kind\": \"event_property_contains\", \"key\": \"content.alt_aliases\","
                    " \"value\": \"#myroom:example.com\"}";
    ck_assert_int_eq(match(c, ALIASES("[\"#somewhere:example.org\", \"#myroom:example.com\"]")), 1);
    ck_assert_int_eq(match(c, ALIASES("[\":example.com\"]")), 0);
    ck_assert_int_eq(match(c, ALIASES("\"#myroom:example.com\"")), 0); /* not an array */
    ck_assert_int_eq(match(c, ALIASES("[{\"a\": 1}, \"#myroom:example.com\"]")), 1);
    ck_assert_int_eq(match(c, "{\"content\": {}}"), 0);
    const char *i = "{\"kind\": \"event_property_contains\", \"key\": \"content.l\", \"value\": 3}";
    ck_assert_int_eq(match(i, "{\"content\": {\"l\": [1, 2, 3]}}"), 1);
    ck_assert_int_eq(match(i, "{\"content\": {\"l\": [\"3\", [3]]}}"), 0);
}
END_TEST

START_TEST(cond_display_name) {
    const char *c = "{\"kind\": \"contains_display_name\"}";
    push_ctx x = ctx(3);
    x.display_name = "Alice";
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"hi alice!\"}}", &x), 1);
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"ALICE\"}}", &x), 1);
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"malice\"}}", &x), 0);
    ck_assert_int_eq(cond(c, "{\"content\": {\"topic\": \"alice\"}}", &x), 0);
    x.display_name = "B*b";
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"hi Bob\"}}", &x), 0);
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"hi b*b.\"}}", &x), 1);
    x.display_name = "@bob";
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"hey@bob\"}}", &x), 1);
    x.display_name = "";
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"anything\"}}", &x), 0);
    x.display_name = NULL;
    ck_assert_int_eq(cond(c, "{\"content\": {\"body\": \"anything\"}}", &x), 0);
}
END_TEST

START_TEST(cond_member_count) {
    static const struct { const char *is; int want[3]; } cases[] = {
        /* counts 1, 2, 3 */
        {"2", {0, 1, 0}},  {"==2", {0, 1, 0}}, {"<2", {1, 0, 0}},  {">2", {0, 0, 1}},
        {"<=2", {1, 1, 0}}, {">=2", {0, 1, 1}}, {"=2", {0, 0, 0}},  {"abc", {0, 0, 0}},
        {"2x", {0, 0, 0}}, {"", {0, 0, 0}},    {"<-1", {0, 0, 0}}, {">=", {0, 0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char c[128];
        snprintf(c, sizeof c, "{\"kind\": \"room_member_count\", \"is\": \"%s\"}", cases[i].is);
        for (int n = 1; n <= 3; n++) {
            push_ctx x = ctx(n);
            ck_assert_msg(cond(c, "{}", &x) == cases[i].want[n - 1], "is '%s' with %d members",
                          cases[i].is, n);
        }
    }
    push_ctx x = ctx(2);
    ck_assert_int_eq(cond("{\"kind\": \"room_member_count\"}", "{}", &x), 0);
}
END_TEST

static int loads;
static int fake_power(void *arg, const json_t **pl, long long *sender) {
    loads++;
    *pl = arg;
    *sender = 20;
    return 0;
}
static int failing_power(void *arg, const json_t **pl, long long *sender) {
    (void)arg, (void)pl, (void)sender;
    return -1;
}

START_TEST(cond_sender_permission) {
    const char *c = "{\"kind\": \"sender_notification_permission\", \"key\": \"room\"}";
    push_ctx x = ctx(3);
    /* no power levels: 50 needed */
    x.sender_power = 50;
    ck_assert_int_eq(cond(c, "{}", &x), 1);
    x.sender_power = 49;
    ck_assert_int_eq(cond(c, "{}", &x), 0);
    json_t *pl = J("{\"notifications\": {\"room\": 10, \"other\": \"30\"}}");
    x.power_levels = pl;
    x.sender_power = 10;
    ck_assert_int_eq(cond(c, "{}", &x), 1);
    x.sender_power = 9;
    ck_assert_int_eq(cond(c, "{}", &x), 0);
    /* string levels (room versions before 10) */
    const char *o = "{\"kind\": \"sender_notification_permission\", \"key\": \"other\"}";
    x.sender_power = 30;
    ck_assert_int_eq(cond(o, "{}", &x), 1);
    x.sender_power = 29;
    ck_assert_int_eq(cond(o, "{}", &x), 0);
    /* no key: no match */
    ck_assert_int_eq(cond("{\"kind\": \"sender_notification_permission\"}", "{}", &x), 0);
    /* lazily loaded, once */
    push_ctx y = {.user_id = ME, .member_count = 3, .load_power = fake_power, .load_arg = pl};
    loads = 0;
    ck_assert_int_eq(cond(c, "{}", &y), 1);
    ck_assert_int_eq(cond(c, "{}", &y), 1);
    ck_assert_int_eq(loads, 1);
    push_ctx z = {.user_id = ME, .load_power = failing_power};
    ck_assert_int_eq(cond(c, "{}", &z), -1);
    json_decref(pl);
}
END_TEST

START_TEST(cond_unknown) {
    ck_assert_int_eq(match("{\"kind\": \"org.example.unknown\"}", "{}"), 0);
    ck_assert_int_eq(match("{\"key\": \"type\", \"pattern\": \"*\"}", "{\"type\": \"x\"}"), 0);
    ck_assert_int_eq(match("{\"kind\": 5}", "{}"), 0);
}
END_TEST

/* ---- rules ---- */

typedef struct outcome {
    bool matched, notify, highlight;
    char sound[32];
    char rule[64];
} outcome;

static outcome eval_full(const char *user_rules, const char *changes, const char *event,
                         push_ctx *x) {
    json_t *u = user_rules ? J(user_rules) : NULL, *ch = changes ? J(changes) : NULL;
    json_t *ev = J(event);
    push_result r;
    ck_assert_int_eq(push_rules_evaluate(u, ch, ev, x, &r), 0);
    outcome o = {.matched = r.matched, .notify = r.notify, .highlight = r.highlight};
    snprintf(o.sound, sizeof o.sound, "%s", r.sound ? r.sound : "");
    snprintf(o.rule, sizeof o.rule, "%s", r.rule_id ? r.rule_id : "");
    push_result_clear(&r);
    json_decref(u);
    json_decref(ch);
    json_decref(ev);
    return o;
}

static outcome eval(const char *event, long long members) {
    push_ctx x = ctx(members);
    x.sender_power = 100;
    return eval_full(NULL, NULL, event, &x);
}

#define MSG(body) \
    "{\"type\": \"m.room.message\", \"sender\": \"@bob:example.org\", \"room_id\": \"!r:example.org\"," \
    " \"content\": {\"msgtype\": \"m.text\", \"body\": \"" body "\"}}"
#define MSG_C(content) \
    "{\"type\": \"m.room.message\", \"sender\": \"@bob:example.org\", \"room_id\": \"!r:example.org\"," \
    " \"content\": " content "}"

static void expect(outcome o, const char *rule, bool notify, bool highlight, const char *sound) {
    ck_assert_str_eq(o.rule, rule);
    ck_assert_int_eq(o.notify, notify);
    ck_assert_int_eq(o.highlight, highlight);
    ck_assert_str_eq(o.sound, sound);
}

/* pvyhs's knock rule: the recipient's own power against a named level. */
static long long user_levels[2];
static int fake_user_power(void *arg, const char *user_id, long long *power) {
    (void)arg;
    *power = !strcmp(user_id, ME) ? user_levels[0] : user_levels[1];
    return user_levels[0] < 0 ? -1 : 0;
}

#define KNOCK "{\"type\": \"m.room.member\", \"state_key\": \"@k:example.org\"," \
              " \"sender\": \"@k:example.org\", \"content\": {\"membership\": \"knock\"}}"

START_TEST(cond_recipient_permission) {
    const char *inv = "{\"kind\": \"org.pvyhs.recipient_permission\", \"key\": \"invite\"}";
    const char *kick = "{\"kind\": \"org.pvyhs.recipient_permission\", \"key\": \"kick\"}";
    json_t *pl = J("{\"invite\": 10, \"kick\": \"60\"}");
    push_ctx x = {.user_id = ME, .member_count = 3, .load_power = fake_power, .load_arg = pl,
                  .load_user_power = fake_user_power};
    user_levels[0] = 60;
    ck_assert_int_eq(cond(inv, KNOCK, &x), 1);
    ck_assert_int_eq(cond(kick, KNOCK, &x), 1);
    user_levels[0] = 59;
    ck_assert_int_eq(cond(kick, KNOCK, &x), 0);
    user_levels[0] = 9;
    ck_assert_int_eq(cond(inv, KNOCK, &x), 0);
    /* without power levels: invite 0, kick 50 (the spec's defaults) */
    push_ctx y = {.user_id = ME, .member_count = 3, .load_power = fake_power, .load_arg = NULL,
                  .load_user_power = fake_user_power};
    user_levels[0] = 0;
    ck_assert_int_eq(cond(inv, KNOCK, &y), 1);
    ck_assert_int_eq(cond(kick, KNOCK, &y), 0);
    user_levels[0] = 50;
    ck_assert_int_eq(cond(kick, KNOCK, &y), 1);
    /* no loader or no key: never matches; a failing loader is an error */
    push_ctx z = ctx(3);
    ck_assert_int_eq(cond(inv, KNOCK, &z), 0);
    ck_assert_int_eq(cond("{\"kind\": \"org.pvyhs.recipient_permission\"}", KNOCK, &x), 0);
    user_levels[0] = -1;
    ck_assert_int_eq(cond(inv, KNOCK, &x), -1);
    /* the default rule: moderators are notified (highlighted), others not */
    user_levels[0] = 100;
    push_ctx m = {.user_id = ME, .member_count = 3, .load_power = fake_power, .load_arg = NULL,
                  .load_user_power = fake_user_power};
    expect(eval_full(NULL, NULL, KNOCK, &m), ".org.pvyhs.rule.knock", true, true, "default");
    user_levels[0] = 0;
    push_ctx p = {.user_id = ME, .member_count = 3, .load_power = fake_power, .load_arg = NULL,
                  .load_user_power = fake_user_power};
    expect(eval_full(NULL, NULL, KNOCK, &p), ".m.rule.member_event", false, false, "");
    json_decref(pl);
}
END_TEST

START_TEST(default_override_rules) {
    /* .m.rule.master is off by default: a message still notifies */
    expect(eval(MSG("hello"), 3), ".m.rule.message", true, false, "");
    expect(eval(MSG_C("{\"msgtype\": \"m.notice\", \"body\": \"bot\"}"), 3),
           ".m.rule.suppress_notices", false, false, "");
    expect(eval("{\"type\": \"m.room.member\", \"state_key\": \"" ME "\", \"sender\": \"@bob:example.org\","
                " \"content\": {\"membership\": \"invite\"}}", 2),
           ".m.rule.invite_for_me", true, false, "default");
    expect(eval("{\"type\": \"m.room.member\", \"state_key\": \"@carol:example.org\","
                " \"sender\": \"@bob:example.org\", \"content\": {\"membership\": \"invite\"}}", 2),
           ".m.rule.member_event", false, false, "");
    expect(eval("{\"type\": \"m.room.member\", \"state_key\": \"@bob:example.org\","
                " \"sender\": \"@bob:example.org\", \"content\": {\"membership\": \"join\"}}", 2),
           ".m.rule.member_event", false, false, "");
    expect(eval(MSG_C("{\"body\": \"hey\", \"m.mentions\": {\"user_ids\": [\"" ME "\"]}}"), 3),
           ".m.rule.is_user_mention", true, true, "default");
    expect(eval(MSG_C("{\"body\": \"hey\", \"m.mentions\": {\"user_ids\": [\"@carol:example.org\"]}}"), 3),
           ".m.rule.message", true, false, "");
    /* legacy display name rule, only without m.mentions */
    expect(eval(MSG("hi Alice Liddell, how are you"), 3), ".m.rule.contains_display_name", true, true,
           "default");
    expect(eval(MSG_C("{\"body\": \"hi Alice Liddell\", \"m.mentions\": {}}"), 3), ".m.rule.message",
           true, false, "");
    expect(eval(MSG_C("{\"body\": \"all\", \"m.mentions\": {\"room\": true}}"), 3),
           ".m.rule.is_room_mention", true, true, "");
    expect(eval(MSG("@room lunch!"), 3), ".m.rule.roomnotif", true, true, "");
    expect(eval("{\"type\": \"m.room.tombstone\", \"state_key\": \"\", \"sender\": \"@bob:example.org\","
                " \"content\": {\"body\": \"moved\", \"replacement_room\": \"!n:example.org\"}}", 3),
           ".m.rule.tombstone", true, true, "");
    /* a tombstone that is not a state event is not the tombstone rule */
    ck_assert(!eval("{\"type\": \"m.room.tombstone\", \"sender\": \"@bob:example.org\","
                    " \"content\": {}}", 3).matched);
    expect(eval("{\"type\": \"m.reaction\", \"sender\": \"@bob:example.org\", \"content\":"
                " {\"m.relates_to\": {\"rel_type\": \"m.annotation\", \"event_id\": \"$x\", \"key\": \"1\"}}}", 2),
           ".m.rule.reaction", false, false, "");
    expect(eval("{\"type\": \"m.room.server_acl\", \"state_key\": \"\", \"sender\": \"@bob:example.org\","
                " \"content\": {\"allow\": [\"*\"]}}", 3),
           ".m.rule.room.server_acl", false, false, "");
    expect(eval(MSG_C("{\"body\": \"* fixed\", \"m.new_content\": {\"body\": \"fixed\"},"
                      " \"m.relates_to\": {\"rel_type\": \"m.replace\", \"event_id\": \"$x\"}}"), 2),
           ".m.rule.suppress_edits", false, false, "");
    /* an edit that mentions the user still highlights (is_user_mention comes first) */
    expect(eval(MSG_C("{\"body\": \"* fixed\", \"m.mentions\": {\"user_ids\": [\"" ME "\"]},"
                      " \"m.relates_to\": {\"rel_type\": \"m.replace\", \"event_id\": \"$x\"}}"), 2),
           ".m.rule.is_user_mention", true, true, "default");
}
END_TEST

START_TEST(default_room_mention_needs_power) {
    push_ctx x = ctx(3);
    x.sender_power = 0;
    json_t *pl = J("{\"notifications\": {\"room\": 50}}");
    x.power_levels = pl;
    expect(eval_full(NULL, NULL, MSG_C("{\"body\": \"all\", \"m.mentions\": {\"room\": true}}"), &x),
           ".m.rule.message", true, false, "");
    expect(eval_full(NULL, NULL, MSG("@room hi"), &x), ".m.rule.message", true, false, "");
    x.sender_power = 50;
    expect(eval_full(NULL, NULL, MSG("@room hi"), &x), ".m.rule.roomnotif", true, true, "");
    json_decref(pl);
}
END_TEST

START_TEST(default_content_and_underride_rules) {
    expect(eval(MSG("is alice around?"), 3), ".m.rule.contains_user_name", true, true, "default");
    expect(eval(MSG_C("{\"body\": \"is alice around?\", \"m.mentions\": {}}"), 3), ".m.rule.message",
           true, false, "");
    expect(eval(MSG("malice"), 3), ".m.rule.message", true, false, "");
    expect(eval("{\"type\": \"m.call.invite\", \"sender\": \"@bob:example.org\", \"content\": {}}", 3),
           ".m.rule.call", true, false, "ring");
    expect(eval("{\"type\": \"m.room.encrypted\", \"sender\": \"@bob:example.org\", \"content\": {}}", 2),
           ".m.rule.encrypted_room_one_to_one", true, false, "default");
    expect(eval(MSG("hi"), 2), ".m.rule.room_one_to_one", true, false, "default");
    expect(eval(MSG("hi"), 3), ".m.rule.message", true, false, "");
    expect(eval("{\"type\": \"m.room.encrypted\", \"sender\": \"@bob:example.org\", \"content\": {}}", 3),
           ".m.rule.encrypted", true, false, "");
    expect(eval("{\"type\": \"im.vector.modular.widgets\", \"state_key\": \"w1\", \"sender\":"
                " \"@bob:example.org\", \"content\": {\"type\": \"jitsi\"}}", 3),
           ".im.vector.jitsi", true, false, "");
    /* nothing matches a topic change: no notification */
    outcome o = eval(TOPIC("\"new topic\""), 3);
    ck_assert(!o.matched && !o.notify && !o.highlight);
}
END_TEST

START_TEST(ruleset_shape) {
    json_t *set = push_rules_ruleset(ME, NULL, NULL);
    static const char *const kinds[] = {"override", "content", "room", "sender", "underride"};
    for (size_t i = 0; i < 5; i++) ck_assert(json_is_array(json_object_get(set, kinds[i])));
    json_t *ov = json_object_get(set, "override");
    static const char *const order[] = {
        ".m.rule.master", ".m.rule.suppress_notices", ".m.rule.invite_for_me",
        ".org.pvyhs.rule.knock", ".m.rule.member_event", ".m.rule.is_user_mention",
        ".m.rule.contains_display_name", ".m.rule.is_room_mention", ".m.rule.roomnotif",
        ".m.rule.tombstone", ".m.rule.reaction", ".m.rule.room.server_acl",
        ".m.rule.suppress_edits"};
    ck_assert_uint_eq(json_array_size(ov), 13);
    for (size_t i = 0; i < 13; i++) {
        json_t *r = json_array_get(ov, i);
        ck_assert_str_eq(json_string_value(json_object_get(r, "rule_id")), order[i]);
        ck_assert(json_is_true(json_object_get(r, "default")));
        ck_assert(json_is_array(json_object_get(r, "conditions")));
        ck_assert(json_is_array(json_object_get(r, "actions")));
        ck_assert(json_is_boolean(json_object_get(r, "enabled")));
    }
    ck_assert(json_is_false(json_object_get(json_array_get(ov, 0), "enabled")));
    /* the user's ID and localpart are filled in */
    json_t *inv = json_array_get(json_object_get(json_array_get(ov, 2), "conditions"), 2);
    ck_assert_str_eq(json_string_value(json_object_get(inv, "pattern")), ME);
    ck_assert_ptr_null(json_object_get(inv, "pattern_type"));
    json_t *men = json_array_get(json_object_get(json_array_get(ov, 5), "conditions"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(men, "value")), ME);
    ck_assert_str_eq(json_string_value(json_object_get(men, "key")), "content.m\\.mentions.user_ids");
    json_t *cu = json_array_get(json_object_get(set, "content"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(cu, "rule_id")), ".m.rule.contains_user_name");
    ck_assert_str_eq(json_string_value(json_object_get(cu, "pattern")), "alice");
    ck_assert_ptr_null(json_object_get(cu, "conditions"));
    json_t *un = json_object_get(set, "underride");
    static const char *const uorder[] = {".m.rule.call", ".m.rule.encrypted_room_one_to_one",
                                         ".m.rule.room_one_to_one", ".m.rule.message",
                                         ".m.rule.encrypted", ".im.vector.jitsi"};
    ck_assert_uint_eq(json_array_size(un), 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(un, i), "rule_id")), uorder[i]);
    ck_assert(push_rule_is_default(PUSH_OVERRIDE, ".m.rule.master"));
    ck_assert(!push_rule_is_default(PUSH_UNDERRIDE, ".m.rule.master"));
    ck_assert(!push_rule_is_default(PUSH_OVERRIDE, "mine"));
    json_decref(set);
}
END_TEST

/* The spec's examples of PUT requests, as stored rules. */
#define USER_RULES                                                                               \
    "{\"override\": [{\"rule_id\": \"U2VlIHlvdSBpbiBUaGUgRHVrZQ\", \"enabled\": true,"           \
    "  \"conditions\": [{\"kind\": \"event_match\", \"key\": \"content.body\", \"pattern\": \"beer\"}," \
    "   {\"kind\": \"room_member_count\", \"is\": \"<=10\"}],"                                    \
    "  \"actions\": [\"notify\", {\"set_tweak\": \"sound\", \"value\": \"beeroclock.wav\"}]}],"    \
    " \"content\": [{\"rule_id\": \"U3BvbmdlIGNha2UgaXMgYmVzdA\", \"enabled\": true,"            \
    "  \"pattern\": \"cake*lie\", \"actions\": [\"notify\"]},"                                    \
    "  {\"rule_id\": \"SSByZWFsbHkgbGlrZSBjYWtl\", \"enabled\": true, \"pattern\": \"cake\","     \
    "  \"actions\": [\"notify\", {\"set_tweak\": \"sound\", \"value\": \"cakealarm.wav\"}]}],"     \
    " \"room\": [{\"rule_id\": \"!dj234r78wl45Gh4D:matrix.org\", \"enabled\": true, \"actions\": []}]," \
    " \"sender\": [{\"rule_id\": \"@spambot:matrix.org\", \"enabled\": true, \"actions\": [\"dont_notify\"]}]}"

START_TEST(user_rules_spec_examples) {
    push_ctx x = ctx(5);
    expect(eval_full(USER_RULES, NULL, MSG("I like cake"), &x), "SSByZWFsbHkgbGlrZSBjYWtl", true,
           false, "cakealarm.wav");
    expect(eval_full(USER_RULES, NULL, MSG("the cake is a lie"), &x), "U3BvbmdlIGNha2UgaXMgYmVzdA",
           true, false, "");
    expect(eval_full(USER_RULES, NULL, MSG("beer o'clock, cake"), &x), "U2VlIHlvdSBpbiBUaGUgRHVrZQ",
           true, false, "beeroclock.wav");
    push_ctx big = ctx(11);
    expect(eval_full(USER_RULES, NULL, MSG("beer o'clock, cake"), &big), "SSByZWFsbHkgbGlrZSBjYWtl",
           true, false, "cakealarm.wav");
    expect(eval_full(USER_RULES, NULL,
                     "{\"type\": \"m.room.message\", \"sender\": \"@bob:example.org\","
                     " \"room_id\": \"!dj234r78wl45Gh4D:matrix.org\", \"content\": {\"body\": \"hi\"}}",
                     &x),
           "!dj234r78wl45Gh4D:matrix.org", false, false, "");
    /* legacy dont_notify is stripped: the rule matches and does nothing */
    expect(eval_full(USER_RULES, NULL,
                     "{\"type\": \"m.room.message\", \"sender\": \"@spambot:matrix.org\","
                     " \"room_id\": \"!r:example.org\", \"content\": {\"body\": \"buy\"}}",
                     &x),
           "@spambot:matrix.org", false, false, "");
    /* a user's content rule comes before the default contains_user_name */
    expect(eval_full(USER_RULES, NULL, MSG("alice wants cake"), &x), "SSByZWFsbHkgbGlrZSBjYWtl",
           true, false, "cakealarm.wav");
    /* ... but after the default override rules */
    expect(eval_full(USER_RULES, NULL, MSG_C("{\"msgtype\": \"m.notice\", \"body\": \"cake\"}"), &x),
           ".m.rule.suppress_notices", false, false, "");
}
END_TEST

START_TEST(user_rules_order_and_enabled) {
    push_ctx x = ctx(3);
    const char *rules =
        "{\"override\": [{\"rule_id\": \"off\", \"enabled\": false, \"conditions\": [],"
        " \"actions\": [\"notify\", {\"set_tweak\": \"highlight\"}]},"
        " {\"rule_id\": \"quiet\", \"enabled\": true, \"conditions\": [{\"kind\": \"event_match\","
        "  \"key\": \"type\", \"pattern\": \"m.room.message\"}], \"actions\": []}]}";
    /* the disabled rule is skipped; the user's override beats the defaults after master */
    expect(eval_full(rules, NULL, MSG("@room alice"), &x), "quiet", false, false, "");
    /* the master rule enabled comes before every user rule */
    expect(eval_full(rules, "{\"override\": {\".m.rule.master\": {\"enabled\": true}}}", MSG("hi"), &x),
           ".m.rule.master", false, false, "");
    /* changed actions and disabled defaults */
    const char *ch = "{\"underride\": {\".m.rule.message\": {\"actions\": [\"notify\","
                     " {\"set_tweak\": \"highlight\", \"value\": true}]},"
                     " \".m.rule.room_one_to_one\": {\"enabled\": false}}}";
    push_ctx two = ctx(2);
    expect(eval_full(NULL, ch, MSG("hi"), &two), ".m.rule.message", true, true, "");
    const char *off = "{\"underride\": {\".m.rule.message\": {\"enabled\": false}}}";
    ck_assert(!eval_full(NULL, off, MSG("hi"), &x).matched);
    /* highlight false, and coalesce ignored */
    const char *hf = "{\"underride\": {\".m.rule.message\": {\"actions\": [\"coalesce\", \"notify\","
                     " {\"set_tweak\": \"highlight\", \"value\": false}]}}}";
    expect(eval_full(NULL, hf, MSG("hi"), &x), ".m.rule.message", true, false, "");
    /* an unknown condition disables a rule */
    const char *unk = "{\"override\": [{\"rule_id\": \"u\", \"enabled\": true, \"conditions\":"
                      " [{\"kind\": \"org.example.future\"}], \"actions\": [\"notify\","
                      " {\"set_tweak\": \"highlight\"}]}]}";
    expect(eval_full(unk, NULL, MSG("hi"), &x), ".m.rule.message", true, false, "");
    /* a rule without conditions matches everything */
    const char *all = "{\"underride\": [{\"rule_id\": \"all\", \"enabled\": true, \"conditions\": [],"
                      " \"actions\": [\"notify\"]}]}";
    expect(eval_full(all, NULL, TOPIC("\"t\""), &x), "all", true, false, "");
}
END_TEST

START_TEST(ruleset_merge) {
    json_t *u = J(USER_RULES);
    json_t *ch = J("{\"override\": {\".m.rule.master\": {\"enabled\": true}},"
                   " \"underride\": {\".m.rule.call\": {\"actions\": [\"notify\"]}}}");
    json_t *set = push_rules_ruleset(ME, u, ch);
    json_t *ov = json_object_get(set, "override");
    ck_assert_uint_eq(json_array_size(ov), 14);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(ov, 0), "rule_id")), ".m.rule.master");
    ck_assert(json_is_true(json_object_get(json_array_get(ov, 0), "enabled")));
    json_t *mine = json_array_get(ov, 1);
    ck_assert_str_eq(json_string_value(json_object_get(mine, "rule_id")), "U2VlIHlvdSBpbiBUaGUgRHVrZQ");
    ck_assert(json_is_false(json_object_get(mine, "default")));
    json_t *content = json_object_get(set, "content");
    ck_assert_uint_eq(json_array_size(content), 3);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(content, 0), "pattern")), "cake*lie");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(content, 2), "rule_id")),
                     ".m.rule.contains_user_name");
    json_t *room = json_array_get(json_object_get(set, "room"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(room, "rule_id")), "!dj234r78wl45Gh4D:matrix.org");
    ck_assert_ptr_null(json_object_get(room, "conditions"));
    ck_assert_ptr_null(json_object_get(room, "pattern"));
    json_t *call = json_array_get(json_object_get(set, "underride"), 0);
    ck_assert_uint_eq(json_array_size(json_object_get(call, "actions")), 1);
    json_decref(set);
    json_decref(u);
    json_decref(ch);
}
END_TEST

START_TEST(actions_checked) {
    hs_err err = {0};
    json_t *a = J("[\"notify\", \"dont_notify\", \"coalesce\", {\"set_tweak\": \"sound\", \"value\": \"x\"}]");
    json_t *clean = push_actions_clean(a, &err);
    ck_assert_ptr_nonnull(clean);
    /* Kept as set (Synapse stores them); evaluation skips the legacy ones. */
    ck_assert(json_equal(clean, a));
    json_decref(clean);
    json_decref(a);
    static const char *const bad[] = {"{}", "[\"ring\"]", "[{\"value\": 1}]", "[5]",
                                      "[{\"set_tweak\": 5}]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *b = J(bad[i]);
        ck_assert_ptr_null(push_actions_clean(b, &err));
        ck_assert_int_eq(err.status, 400);
        ck_assert_str_eq(err.errcode, "M_INVALID_PARAM");
        json_decref(b);
    }
    json_t *n = json_pack("{s:s#}", "a", "x\0y", (int)3);
    ck_assert(push_json_has_nul(n));
    json_decref(n);
    json_t *ok = J("{\"a\": [\"x\", {\"b\": \"y\"}]}");
    ck_assert(!push_json_has_nul(ok));
    json_decref(ok);
    ck_assert_int_eq(push_kind_parse("underride"), PUSH_UNDERRIDE);
    ck_assert_int_eq(push_kind_parse("global"), -1);
    ck_assert_str_eq(push_kind_name(PUSH_SENDER), "sender");
}
END_TEST

int main(void) {
    Suite *s = suite_create("client_push_rules");
    TCase *tc = tcase_create("push_rules");
    tcase_add_test(tc, glob_whole);
    tcase_add_test(tc, glob_words);
    tcase_add_test(tc, dotted_paths);
    tcase_add_test(tc, cond_event_match);
    tcase_add_test(tc, cond_property_is);
    tcase_add_test(tc, cond_property_contains);
    tcase_add_test(tc, cond_display_name);
    tcase_add_test(tc, cond_member_count);
    tcase_add_test(tc, cond_sender_permission);
    tcase_add_test(tc, cond_recipient_permission);
    tcase_add_test(tc, cond_unknown);
    tcase_add_test(tc, default_override_rules);
    tcase_add_test(tc, default_room_mention_needs_power);
    tcase_add_test(tc, default_content_and_underride_rules);
    tcase_add_test(tc, ruleset_shape);
    tcase_add_test(tc, user_rules_spec_examples);
    tcase_add_test(tc, user_rules_order_and_enabled);
    tcase_add_test(tc, ruleset_merge);
    tcase_add_test(tc, actions_checked);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
