/* test_rooms_auth.c — the authorization rules, one test per rule and per
 * room-version difference, with the edge cases the spec calls out. */
#include <check.h>
#include <limits.h>
#include <stdlib.h>

#include "homeserver/core/signing.h"
#include "rooms_fixture.h"

#define ALICE "@alice:example.org" /* creator, power 100 */
#define BOB "@bob:example.org"     /* power 0 */
#define CAROL "@carol:example.org" /* power 0 */
#define MOD "@mod:example.org"     /* power 50 */
#define REMOTE "@rem:other.org"

/* Power levels with alice at 100 (v1–11) or, in v12, alice as creator. */
#define PL_BODY "'users_default':0,'events_default':0,'state_default':50,'ban':50,'kick':50," \
                "'redact':50,'invite':0"
#define PL_STD "{'users':{'" ALICE "':100,'" MOD "':50}," PL_BODY "}"
#define PL_V12 "{'users':{'" MOD "':50}," PL_BODY "}"

static fx_room r;

static const char *std_pl(const char *ver) { return strcmp(ver, "12") == 0 ? PL_V12 : PL_STD; }

/* A room of version ver with alice (creator) and mod joined. */
static void room(const char *ver) {
    fx_room_init(&r, ver, std_pl(ver));
    fx_member(&r, MOD, "join");
}

static room_event *ev(const char *type, const char *sender, const char *sk, const char *content) {
    return fx_event(&r, type, sender, sk, content);
}

static room_event *member(const char *sender, const char *target, const char *content) {
    return fx_event(&r, "m.room.member", sender, target, content);
}

static void join_rule(const char *rule) {
    char c[64];
    snprintf(c, sizeof c, "{'join_rule':'%s'}", rule);
    fx_set(&r, ev("m.room.join_rules", ALICE, "", c));
}

static void teardown(void) { fx_room_free(&r); }

/* ---- rule 1: create ------------------------------------------------------ */

/* A create event for version ver from JSON text with the blanks filled. */
static room_event *create_event(const char *ver, const char *json) {
    r.v = fx_ver(ver);
    return fx_event_json(&r, fx_json(json));
}

START_TEST(create_rules) {
    memset(&r, 0, sizeof r);
    strcpy(r.room_id, "!room:example.org");
    const char *ok = "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                     "'content':{'creator':'" ALICE "'}}";
    FX_ALLOW(&r, create_event("10", ok));
    FX_DENY(&r, create_event("10", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'content':{'creator':'" ALICE "'},'prev_events':['$x']}"));
    FX_DENY(&r, create_event("10", "{'type':'m.room.create','sender':'" REMOTE "','state_key':'',"
                                   "'content':{'creator':'" REMOTE "'}}")); /* room ID domain */
    FX_DENY(&r, create_event("10", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'content':{'creator':'" ALICE "','room_version':'99'}}"));
    FX_DENY(&r, create_event("10", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'content':{'creator':'" ALICE "','room_version':10}}"));
    FX_ALLOW(&r, create_event("10", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                    "'content':{'creator':'" ALICE "','room_version':'10'}}"));
    /* content.creator: required until v11, which uses the sender. */
    const char *no_creator = "{'type':'m.room.create','sender':'" ALICE "','state_key':'','content':{}}";
    FX_DENY(&r, create_event("1", no_creator));
    FX_DENY(&r, create_event("10", no_creator));
    FX_ALLOW(&r, create_event("11", no_creator));
    FX_ALLOW(&r, create_event("12", no_creator));
    /* The create event's rules do not consult the state. */
    hs_err err = {0};
    ck_assert_int_eq(room_auth_check(create_event("11", no_creator), NULL, NULL, &err), 0);
}
END_TEST

START_TEST(create_rules_v12) {
    memset(&r, 0, sizeof r);
    strcpy(r.room_id, "!room:example.org");
    FX_DENY(&r, create_event("12", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'room_id':'!room:example.org','content':{}}"));
    /* A v12 room ID has no domain, so a remote creator is fine. */
    FX_ALLOW(&r, create_event("12", "{'type':'m.room.create','sender':'" REMOTE "','state_key':'',"
                                    "'content':{}}"));
    FX_ALLOW(&r, create_event("12", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                    "'content':{'additional_creators':['" BOB "','" REMOTE "']}}"));
    FX_DENY(&r, create_event("12", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'content':{'additional_creators':'" BOB "'}}"));
    FX_DENY(&r, create_event("12", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'content':{'additional_creators':['" BOB "', 5]}}"));
    FX_DENY(&r, create_event("12", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                   "'content':{'additional_creators':['bob']}}"));
    /* Before v12 additional_creators means nothing. */
    FX_ALLOW(&r, create_event("11", "{'type':'m.room.create','sender':'" ALICE "','state_key':'',"
                                    "'content':{'additional_creators':'junk'}}"));
}
END_TEST

/* ---- rules 2–4: the room and its create event ----------------------------- */

START_TEST(no_create_in_state) {
    room("10");
    r.state[0] = r.state[--r.n_state]; /* drop the create event */
    FX_DENY(&r, ev("m.room.message", ALICE, NULL, "{}"));
}
END_TEST

START_TEST(other_room) {
    room("10");
    json_t *j = fx_json("{'type':'m.room.message','sender':'" ALICE "','content':{},"
                        "'room_id':'!elsewhere:example.org'}");
    FX_DENY(&r, fx_event_json(&r, j));
    /* State that belongs to another room does not count either. */
    room_event *foreign = fx_event_json(&r, fx_json("{'type':'m.room.member','sender':'" BOB "',"
                                                    "'state_key':'" BOB "','room_id':'!x:example.org',"
                                                    "'content':{'membership':'join'}}"));
    fx_set(&r, foreign);
    FX_DENY(&r, ev("m.room.message", BOB, NULL, "{}"));
}
END_TEST

START_TEST(v12_room_is_the_create_event) {
    room("12");
    FX_ALLOW(&r, ev("m.room.message", ALICE, NULL, "{}"));
    /* Rule 2: a room ID that names no (accepted) create event. */
    json_t *j = fx_json("{'type':'m.room.message','sender':'" ALICE "','content':{},"
                        "'room_id':'!AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'}");
    FX_DENY(&r, fx_event_json(&r, j));
    r.create->rejected = true;
    FX_DENY(&r, ev("m.room.message", ALICE, NULL, "{}"));
    r.create->rejected = false;
    /* Rule 3.2: the create event must not be cited. */
    char create_id[sizeof r.room_id];
    create_id[0] = '$';
    strcpy(create_id + 1, r.room_id + 1);
    j = fx_json("{'type':'m.room.message','sender':'" ALICE "','content':{}}");
    json_object_set_new(j, "auth_events", json_pack("[s]", create_id));
    FX_DENY(&r, fx_event_json(&r, j));
}
END_TEST

START_TEST(federate_false) {
    memset(&r, 0, sizeof r);
    r.v = fx_ver("10");
    strcpy(r.room_id, "!room:example.org");
    r.create = fx_set(&r, ev("m.room.create", ALICE, "", "{'creator':'" ALICE "','m.federate':false}"));
    fx_member(&r, ALICE, "join");
    fx_member(&r, REMOTE, "join");
    FX_ALLOW(&r, ev("m.room.message", ALICE, NULL, "{}"));
    FX_DENY(&r, ev("m.room.message", REMOTE, NULL, "{}"));
    FX_DENY(&r, member(REMOTE, REMOTE, "{'membership':'leave'}"));
    /* Only the boolean false counts (the spec says "set to false"). */
    r.create = fx_set(&r, ev("m.room.create", ALICE, "", "{'creator':'" ALICE "','m.federate':0}"));
    FX_ALLOW(&r, ev("m.room.message", REMOTE, NULL, "{}"));
}
END_TEST

/* ---- v1–v5 rule 4: aliases ------------------------------------------------ */

START_TEST(aliases_before_v6) {
    const char *vers[] = {"1", "5"};
    for (int i = 0; i < 2; i++) {
        room(vers[i]);
        /* A server sets its own aliases without being in the room. */
        FX_ALLOW(&r, ev("m.room.aliases", REMOTE, "other.org", "{'aliases':[]}"));
        FX_DENY(&r, ev("m.room.aliases", REMOTE, "example.org", "{'aliases':[]}"));
        FX_DENY(&r, ev("m.room.aliases", ALICE, NULL, "{'aliases':[]}"));
        fx_room_free(&r);
    }
    /* From v6 aliases are ordinary state: membership and power apply. */
    room("6");
    FX_DENY(&r, ev("m.room.aliases", REMOTE, "other.org", "{'aliases':[]}"));
    fx_member(&r, BOB, "join");
    FX_DENY(&r, ev("m.room.aliases", BOB, "example.org", "{'aliases':[]}"));
    FX_ALLOW(&r, ev("m.room.aliases", ALICE, "other.org", "{'aliases':[]}"));
}
END_TEST

/* ---- rule 5: membership --------------------------------------------------- */

START_TEST(member_needs_state_key_and_membership) {
    room("10");
    FX_DENY(&r, member(BOB, BOB, "{}"));
    FX_DENY(&r, ev("m.room.member", BOB, NULL, "{'membership':'join'}"));
    FX_DENY(&r, member(ALICE, BOB, "{'membership':'dance'}"));
    FX_DENY(&r, member(ALICE, BOB, "{'membership':5}"));
}
END_TEST

/* The creator's first join, right after the create event. */
static room_event *first_join(const char *user) {
    json_t *j = fx_json("{'type':'m.room.member','content':{'membership':'join'}}");
    json_object_set_new(j, "sender", json_string(user));
    json_object_set_new(j, "state_key", json_string(user));
    json_t *prev = r.v->event_format == ROOM_EVFMT_V1
                       ? json_pack("[[s,{s:s}]]", r.create->event_id, "sha256", "x")
                       : json_pack("[s]", r.create->event_id);
    json_object_set_new(j, "prev_events", prev);
    return fx_event_json(&r, j);
}

START_TEST(creator_first_join) {
    const char *vers[] = {"1", "10", "11", "12"};
    for (int i = 0; i < 4; i++) {
        fx_room_init(&r, vers[i], NULL);
        r.n_state = 1; /* only the create event */
        FX_ALLOW(&r, first_join(ALICE));
        FX_DENY(&r, first_join(BOB));
        fx_room_free(&r);
    }
    /* v1–10 mean content.creator, not the sender of the create event. */
    memset(&r, 0, sizeof r);
    r.v = fx_ver("10");
    strcpy(r.room_id, "!room:example.org");
    r.create = fx_set(&r, ev("m.room.create", ALICE, "", "{'creator':'" BOB "'}"));
    FX_ALLOW(&r, first_join(BOB));
    FX_DENY(&r, first_join(ALICE));
}
END_TEST

START_TEST(join_basics) {
    room("10");
    join_rule("public");
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'join'}"));
    FX_DENY(&r, member(ALICE, BOB, "{'membership':'join'}")); /* not for someone else */
    /* Join after ban: the ban wins even in a public room. */
    fx_set(&r, member(ALICE, BOB, "{'membership':'ban'}"));
    FX_DENY(&r, member(BOB, BOB, "{'membership':'join'}"));
}
END_TEST

START_TEST(join_invite_only) {
    room("10");
    join_rule("invite");
    FX_DENY(&r, member(BOB, BOB, "{'membership':'join'}"));
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'join'}"));
    FX_ALLOW(&r, member(MOD, MOD, "{'membership':'join','displayname':'m'}")); /* already in */
    join_rule("private");
    FX_DENY(&r, member(BOB, BOB, "{'membership':'join'}"));
}
END_TEST

START_TEST(join_without_join_rules_is_invite_only) {
    room("10");
    FX_DENY(&r, member(BOB, BOB, "{'membership':'join'}"));
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'join'}"));
    /* A join rules event without join_rule reads the same way. */
    fx_set(&r, ev("m.room.join_rules", ALICE, "", "{}"));
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'join'}"));
}
END_TEST

START_TEST(join_knock_rule_by_version) {
    /* v7+: "knock" rooms admit the invited. Before v7 "knock" is unknown. */
    room("7");
    join_rule("knock");
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'join'}"));
    FX_DENY(&r, member(CAROL, CAROL, "{'membership':'join'}"));
    fx_room_free(&r);
    room("6");
    join_rule("knock");
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_DENY(&r, member(BOB, BOB, "{'membership':'join'}"));
}
END_TEST

/* A restricted join by bob, vouched for by via (NULL: no authoriser),
 * signed by the servers in sigs (JSON text). */
static room_event *restricted_join(const char *via, const char *sigs) {
    json_t *j = fx_json("{'type':'m.room.member','sender':'" BOB "','state_key':'" BOB "',"
                        "'content':{'membership':'join'}}");
    if (via)
        json_object_set_new(json_object_get(j, "content"), "join_authorised_via_users_server",
                            json_string(via));
    json_object_set_new(j, "signatures", fx_json(sigs));
    return fx_event_json(&r, j);
}

#define SIGNED_BY_EXAMPLE "{'example.org':{'ed25519:a':'s'}}"

START_TEST(join_restricted) {
    room("8");
    join_rule("restricted");
    FX_DENY(&r, restricted_join(NULL, "{}")); /* missing authoriser */
    FX_DENY(&r, restricted_join(CAROL, SIGNED_BY_EXAMPLE)); /* authoriser not joined */
    fx_member(&r, CAROL, "join");
    fx_set(&r, ev("m.room.power_levels", ALICE, "",
                  "{'users':{'" ALICE "':100,'" MOD "':50},'invite':50}"));
    FX_DENY(&r, restricted_join(CAROL, SIGNED_BY_EXAMPLE)); /* carol cannot invite */
    FX_ALLOW(&r, restricted_join(MOD, SIGNED_BY_EXAMPLE));
    FX_DENY(&r, restricted_join(MOD, "{'other.org':{'ed25519:a':'s'}}")); /* 5.2: not signed */
    FX_DENY(&r, restricted_join("not-a-user", SIGNED_BY_EXAMPLE));
    /* The invited need no authoriser. */
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_ALLOW(&r, restricted_join(NULL, "{}"));
    fx_room_free(&r);
    /* v7 knows no restricted rule. */
    room("7");
    join_rule("restricted");
    FX_DENY(&r, restricted_join(MOD, SIGNED_BY_EXAMPLE));
}
END_TEST

START_TEST(join_knock_restricted) {
    room("10");
    join_rule("knock_restricted");
    FX_ALLOW(&r, restricted_join(MOD, SIGNED_BY_EXAMPLE));
    FX_DENY(&r, restricted_join(NULL, "{}"));
    FX_ALLOW(&r, member(CAROL, CAROL, "{'membership':'knock'}"));
    fx_room_free(&r);
    room("9");
    join_rule("knock_restricted");
    FX_DENY(&r, restricted_join(MOD, SIGNED_BY_EXAMPLE));
    FX_DENY(&r, member(CAROL, CAROL, "{'membership':'knock'}"));
}
END_TEST

START_TEST(invite) {
    room("10");
    FX_ALLOW(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_DENY(&r, member(CAROL, BOB, "{'membership':'invite'}")); /* inviter not joined */
    FX_DENY(&r, member(ALICE, MOD, "{'membership':'invite'}")); /* already joined */
    fx_set(&r, member(ALICE, BOB, "{'membership':'ban'}"));
    FX_DENY(&r, member(ALICE, BOB, "{'membership':'invite'}")); /* banned */
    /* Invite power: at least the invite level. */
    fx_set(&r, ev("m.room.power_levels", ALICE, "",
                  "{'users':{'" ALICE "':100,'" MOD "':50},'invite':51}"));
    FX_DENY(&r, member(MOD, CAROL, "{'membership':'invite'}"));
    FX_ALLOW(&r, member(ALICE, CAROL, "{'membership':'invite'}"));
}
END_TEST

/* ---- third-party invites -------------------------------------------------- */

static hs_signing_key tpi_key;

/* content of an invite through token, signed by tpi_key; with tamper,
 * "signed" gains a key after signing, so the signature no longer holds. */
static char *tpi_content(const char *mxid, const char *token, bool tamper) {
    json_t *signed_ = json_pack("{s:s,s:s}", "mxid", mxid, "token", token);
    hs_err err = {0};
    ck_assert_int_eq(hs_json_sign(signed_, "id.example.org", &tpi_key, &err), 0);
    if (tamper) json_object_set_new(signed_, "extra", json_string("x"));
    json_t *c = json_pack("{s:s,s:{s:s,s:o}}", "membership", "invite", "third_party_invite",
                          "display_name", "b…", "signed", signed_);
    char *s = json_dumps(c, 0);
    json_decref(c);
    for (char *p = s; *p; p++)
        if (*p == '"') *p = '\'';
    return s;
}

static void tpi_state(const char *sender, const char *keys_json) {
    fx_set(&r, ev("m.room.third_party_invite", sender, "tok", keys_json));
}

static room_event *tpi_invite(const char *sender, const char *target, const char *mxid,
                              bool tamper) {
    char *c = tpi_content(mxid, "tok", tamper);
    room_event *e = member(sender, target, c);
    free(c);
    return e;
}

START_TEST(third_party_invite_member) {
    ck_assert_int_eq(hs_signing_key_generate(&tpi_key), 0);
    char *pk = hs_signing_key_public_b64(&tpi_key);
    char keys[256], list[256];
    snprintf(keys, sizeof keys, "{'display_name':'b','public_key':'%s'}", pk);
    snprintf(list, sizeof list, "{'public_key':'AAAA','public_keys':[{'public_key':'%s'}]}", pk);
    free(pk);
    room("10");
    FX_DENY(&r, tpi_invite(ALICE, BOB, BOB, false)); /* no invite event for the token */
    tpi_state(ALICE, keys);
    FX_ALLOW(&r, tpi_invite(ALICE, BOB, BOB, false));
    FX_DENY(&r, tpi_invite(ALICE, BOB, CAROL, false)); /* mxid is not the state_key */
    FX_DENY(&r, tpi_invite(ALICE, BOB, BOB, true));    /* bad signature */
    FX_DENY(&r, member(ALICE, BOB, "{'membership':'invite','third_party_invite':{}}"));
    FX_DENY(&r, member(ALICE, BOB, "{'membership':'invite','third_party_invite':"
                                   "{'signed':{'mxid':'" BOB "'}}}"));
    fx_member(&r, CAROL, "join");
    FX_DENY(&r, tpi_invite(CAROL, BOB, BOB, false)); /* carol did not send the invite */
    tpi_state(ALICE, list);
    FX_ALLOW(&r, tpi_invite(ALICE, BOB, BOB, false)); /* key found in public_keys */
    fx_set(&r, member(ALICE, BOB, "{'membership':'ban'}"));
    FX_DENY(&r, tpi_invite(ALICE, BOB, BOB, false)); /* target banned */
}
END_TEST

START_TEST(third_party_invite_event) {
    room("10");
    fx_member(&r, BOB, "join");
    FX_ALLOW(&r, ev("m.room.third_party_invite", BOB, "t", "{}"));
    fx_set(&r, ev("m.room.power_levels", ALICE, "", "{'users':{'" ALICE "':100},'invite':10}"));
    FX_DENY(&r, ev("m.room.third_party_invite", BOB, "t", "{}"));
    FX_ALLOW(&r, ev("m.room.third_party_invite", ALICE, "t", "{}"));
    FX_DENY(&r, ev("m.room.third_party_invite", CAROL, "t", "{}")); /* not joined */
}
END_TEST

/* ---- leave, kick, ban, knock ------------------------------------------------ */

START_TEST(leave_self) {
    room("10");
    FX_ALLOW(&r, member(MOD, MOD, "{'membership':'leave'}"));
    FX_DENY(&r, member(BOB, BOB, "{'membership':'leave'}")); /* never in */
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'leave'}")); /* reject an invite */
    fx_member(&r, CAROL, "knock");
    FX_ALLOW(&r, member(CAROL, CAROL, "{'membership':'leave'}")); /* withdraw a knock */
    fx_set(&r, member(ALICE, CAROL, "{'membership':'ban'}"));
    FX_DENY(&r, member(CAROL, CAROL, "{'membership':'leave'}")); /* cannot unban oneself */
}
END_TEST

START_TEST(kick) {
    room("10");
    fx_member(&r, BOB, "join");
    fx_member(&r, CAROL, "join");
    FX_DENY(&r, member(BOB, CAROL, "{'membership':'leave'}"));  /* below kick level */
    FX_ALLOW(&r, member(MOD, CAROL, "{'membership':'leave'}"));
    FX_DENY(&r, member(MOD, ALICE, "{'membership':'leave'}"));  /* target above */
    FX_ALLOW(&r, member(ALICE, MOD, "{'membership':'leave'}"));
    fx_set(&r, member(MOD, MOD, "{'membership':'leave'}"));
    FX_DENY(&r, member(MOD, CAROL, "{'membership':'leave'}"));  /* kicker not joined */
}
END_TEST

START_TEST(unban) {
    room("10");
    fx_set(&r, member(ALICE, BOB, "{'membership':'ban'}"));
    FX_ALLOW(&r, member(MOD, BOB, "{'membership':'leave'}"));
    /* Unbanning needs the ban level as well as the kick level. */
    fx_set(&r, ev("m.room.power_levels", ALICE, "",
                  "{'users':{'" ALICE "':100,'" MOD "':50},'kick':50,'ban':75}"));
    FX_DENY(&r, member(MOD, BOB, "{'membership':'leave'}"));
    FX_ALLOW(&r, member(ALICE, BOB, "{'membership':'leave'}"));
}
END_TEST

START_TEST(ban) {
    room("10");
    fx_member(&r, BOB, "join");
    FX_ALLOW(&r, member(ALICE, BOB, "{'membership':'ban'}"));
    FX_ALLOW(&r, member(MOD, CAROL, "{'membership':'ban'}")); /* not a member: still bannable */
    FX_DENY(&r, member(BOB, CAROL, "{'membership':'ban'}"));  /* below ban level */
    FX_DENY(&r, member(MOD, ALICE, "{'membership':'ban'}"));  /* target above */
    fx_set(&r, ev("m.room.power_levels", ALICE, "",
                  "{'users':{'" ALICE "':100,'" MOD "':50,'" BOB "':50}}"));
    FX_DENY(&r, member(MOD, BOB, "{'membership':'ban'}"));    /* equal power */
    FX_DENY(&r, member(CAROL, BOB, "{'membership':'ban'}"));  /* not joined */
}
END_TEST

START_TEST(knock_by_version) {
    /* v6: knock is an unknown membership. */
    room("6");
    join_rule("knock");
    FX_DENY(&r, member(BOB, BOB, "{'membership':'knock'}"));
    fx_room_free(&r);
    room("7");
    join_rule("knock");
    FX_ALLOW(&r, member(BOB, BOB, "{'membership':'knock'}"));
    FX_DENY(&r, member(ALICE, BOB, "{'membership':'knock'}")); /* for someone else */
    FX_DENY(&r, member(MOD, MOD, "{'membership':'knock'}"));   /* already joined */
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_DENY(&r, member(BOB, BOB, "{'membership':'knock'}"));   /* already invited */
    fx_set(&r, member(ALICE, BOB, "{'membership':'ban'}"));
    FX_DENY(&r, member(BOB, BOB, "{'membership':'knock'}"));   /* banned */
    fx_set(&r, member(ALICE, CAROL, "{'membership':'leave'}"));
    FX_ALLOW(&r, member(CAROL, CAROL, "{'membership':'knock'}")); /* after leaving */
    join_rule("invite");
    FX_DENY(&r, member(CAROL, CAROL, "{'membership':'knock'}"));
    join_rule("public");
    FX_DENY(&r, member(CAROL, CAROL, "{'membership':'knock'}"));
}
END_TEST

/* ---- rules 6–9 ------------------------------------------------------------- */

START_TEST(sender_must_be_joined) {
    room("10");
    FX_ALLOW(&r, ev("m.room.message", MOD, NULL, "{}"));
    FX_DENY(&r, ev("m.room.message", BOB, NULL, "{}"));
    fx_set(&r, member(ALICE, BOB, "{'membership':'invite'}"));
    FX_DENY(&r, ev("m.room.message", BOB, NULL, "{}"));
    fx_member(&r, BOB, "join");
    FX_ALLOW(&r, ev("m.room.message", BOB, NULL, "{}"));
    fx_member(&r, BOB, "leave");
    FX_DENY(&r, ev("m.room.message", BOB, NULL, "{}"));
}
END_TEST

START_TEST(required_power) {
    room("10");
    fx_member(&r, BOB, "join");
    FX_DENY(&r, ev("m.room.topic", BOB, "", "{}"));  /* state_default 50 */
    FX_ALLOW(&r, ev("m.room.topic", MOD, "", "{}"));
    fx_set(&r, ev("m.room.power_levels", ALICE, "",
                  "{'users':{'" ALICE "':100,'" MOD "':50},'events_default':10,"
                  "'events':{'m.reaction':0,'m.room.topic':60}}"));
    FX_DENY(&r, ev("m.room.message", BOB, NULL, "{}"));
    FX_ALLOW(&r, ev("m.reaction", BOB, NULL, "{}"));
    FX_DENY(&r, ev("m.room.topic", MOD, "", "{}"));  /* events overrides state_default */
    FX_ALLOW(&r, ev("m.room.topic", ALICE, "", "{}"));
    /* The redact level is not an auth rule from v3 on: only events/_default. */
    FX_DENY(&r, ev("m.room.redaction", BOB, NULL, "{'redacts':'$x'}"));
    FX_ALLOW(&r, ev("m.room.redaction", MOD, NULL, "{'redacts':'$x'}"));
}
END_TEST

START_TEST(no_power_levels_defaults) {
    /* Without power levels the creator has 100, others 0, state needs 50. */
    fx_room_init(&r, "10", NULL);
    fx_member(&r, BOB, "join");
    FX_ALLOW(&r, ev("m.room.message", BOB, NULL, "{}"));
    FX_DENY(&r, ev("m.room.name", BOB, "", "{}"));
    FX_ALLOW(&r, ev("m.room.name", ALICE, "", "{}"));
}
END_TEST

START_TEST(state_key_user_rule) {
    room("10");
    FX_DENY(&r, ev("m.custom", ALICE, BOB, "{}"));
    FX_ALLOW(&r, ev("m.custom", ALICE, ALICE, "{}"));
    FX_ALLOW(&r, ev("m.custom", ALICE, "bob", "{}"));
    FX_DENY(&r, ev("m.custom", ALICE, "@", "{}"));
}
END_TEST

/* ---- rule 10: power levels --------------------------------------------------- */

static room_event *pl(const char *sender, const char *content) {
    return ev("m.room.power_levels", sender, "", content);
}

START_TEST(power_levels_first_event) {
    fx_room_init(&r, "10", NULL);
    FX_ALLOW(&r, pl(ALICE, "{'users':{'" BOB "':1000},'ban':9000}"));
    fx_member(&r, BOB, "join");
    FX_DENY(&r, pl(BOB, "{}")); /* state_default 50 */
}
END_TEST

START_TEST(power_levels_format) {
    room("10");
    FX_ALLOW(&r, pl(ALICE, PL_STD));
    FX_DENY(&r, pl(ALICE, "{'users':[]}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'bob':10}}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'@bob:bad_server':10}}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'" BOB "':true}}"));
    /* v10: integers only. */
    FX_DENY(&r, pl(ALICE, "{'users':{'" BOB "':'10'}}"));
    FX_DENY(&r, pl(ALICE, "{'ban':'50'}"));
    FX_DENY(&r, pl(ALICE, "{'events':{'m.room.name':'50'}}"));
    FX_DENY(&r, pl(ALICE, "{'notifications':{'room':'50'}}"));
    FX_DENY(&r, pl(ALICE, "{'events':[]}"));
    FX_DENY(&r, pl(ALICE, "{'kick':null}"));
    fx_room_free(&r);
    /* v9: strings holding integers are fine, other strings are not. */
    room("9");
    FX_ALLOW(&r, pl(ALICE, "{'users':{'" ALICE "':' +100 ','" BOB "':'010'},'ban':'-5',"
                           "'events':{'m.room.name':'50'}}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" BOB "':'ten'}}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" BOB "':'1.5'}}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" BOB "':'+-1'}}"));
    FX_DENY(&r, pl(ALICE, "{'ban':'abc'}"));
    FX_DENY(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" BOB "':''}}"));
}
END_TEST

START_TEST(stringy_power_levels_in_effect) {
    /* A v1 room whose power levels are strings works like integers. */
    fx_room_init(&r, "1", "{'users':{'" ALICE "':'100','" MOD "':'50','" BOB "':'  007 '},"
                          "'events_default':' 5','state_default':'+50'}");
    fx_member(&r, BOB, "join");
    fx_member(&r, CAROL, "join");
    FX_ALLOW(&r, ev("m.room.message", BOB, NULL, "{}"));
    FX_DENY(&r, ev("m.room.message", CAROL, NULL, "{}"));
    ck_assert_int_eq(room_user_power_level(r.v, BOB, fx_lookup, &r), 7);
    ck_assert_int_eq(room_user_power_level(r.v, ALICE, fx_lookup, &r), 100);
}
END_TEST

START_TEST(power_levels_changes) {
    room("10");
    fx_member(&r, BOB, "join");
    fx_member(&r, "@mod2:example.org", "join");
    fx_set(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},"
                         "'kick':75,'ban':50,'events':{'m.room.name':60,'m.room.topic':40},"
                         "'notifications':{'room':80}}"));
#define MOD_PL(extra) \
    "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50" extra "},'kick':75,'ban':50," \
    "'events':{'m.room.name':60,'m.room.topic':40},'notifications':{'room':80}}"
    FX_ALLOW(&r, pl(MOD, MOD_PL(",'" BOB "':50")));   /* up to own level */
    FX_DENY(&r, pl(MOD, MOD_PL(",'" BOB "':51")));    /* above own level */
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':10},'kick':75,"
                        "'ban':50,'events':{'m.room.name':60,'m.room.topic':40},"
                        "'notifications':{'room':80}}")); /* demote an equal */
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':10,'" MOD "':50,'@mod2:example.org':50},'kick':75,"
                        "'ban':50,'events':{'m.room.name':60,'m.room.topic':40},"
                        "'notifications':{'room':80}}")); /* demote a superior */
    FX_ALLOW(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':10,'@mod2:example.org':50},'kick':75,"
                         "'ban':50,'events':{'m.room.name':60,'m.room.topic':40},"
                         "'notifications':{'room':80}}")); /* demote oneself */
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},'kick':40,"
                        "'ban':50,'events':{'m.room.name':60,'m.room.topic':40},"
                        "'notifications':{'room':80}}")); /* kick was above own level */
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},'kick':75,"
                        "'ban':50,'redact':60,'events':{'m.room.name':60,'m.room.topic':40},"
                        "'notifications':{'room':80}}")); /* new value above own level */
    FX_ALLOW(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},'kick':75,"
                         "'ban':30,'events':{'m.room.name':60,'m.room.topic':50},"
                         "'notifications':{'room':80}}")); /* within own level */
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},'kick':75,"
                        "'ban':50,'events':{'m.room.topic':40},'notifications':{'room':80}}"));
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},'kick':75,"
                        "'ban':50,'events':{'m.room.name':60,'m.room.topic':40,'x':51},"
                        "'notifications':{'room':80}}")); /* add an event above own */
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50,'@mod2:example.org':50},'kick':75,"
                        "'ban':50,'events':{'m.room.name':60,'m.room.topic':40},"
                        "'notifications':{'room':0}}")); /* notifications checked from v6 */
    FX_ALLOW(&r, pl(ALICE, "{'users':{'" ALICE "':100}}")); /* the top can change anything */
#undef MOD_PL
}
END_TEST

START_TEST(notifications_unchecked_before_v6) {
    room("5");
    fx_set(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" MOD "':50},'notifications':{'room':80}}"));
    FX_ALLOW(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50},'notifications':{'room':0}}"));
    fx_room_free(&r);
    room("6");
    fx_set(&r, pl(ALICE, "{'users':{'" ALICE "':100,'" MOD "':50},'notifications':{'room':80}}"));
    FX_DENY(&r, pl(MOD, "{'users':{'" ALICE "':100,'" MOD "':50},'notifications':{'room':0}}"));
}
END_TEST

START_TEST(v12_creators) {
    room("12");
    /* Creators cannot be listed in users, nor can additional creators. */
    FX_DENY(&r, pl(ALICE, "{'users':{'" ALICE "':100}}"));
    /* Malformed content, not a lack of power: a local client hears 400. */
    hs_err perr = {0};
    ck_assert_int_eq(room_auth_check(pl(ALICE, "{'users':{'" ALICE "':100}}"), fx_lookup, &r, &perr),
                     -1);
    ck_assert_int_eq(perr.status, 400);
    ck_assert_str_eq(perr.errcode, "M_BAD_JSON");
    FX_ALLOW(&r, pl(ALICE, PL_V12));
    /* Infinite power: more than any level anyone can set. */
    ck_assert_int_eq(room_user_power_level(r.v, ALICE, fx_lookup, &r), LLONG_MAX);
    fx_set(&r, pl(ALICE, "{'users':{'" MOD "':9007199254740990},'state_default':9007199254740991}"));
    FX_ALLOW(&r, ev("m.room.name", ALICE, "", "{}"));
    FX_DENY(&r, ev("m.room.name", MOD, "", "{}"));
    FX_ALLOW(&r, member(ALICE, MOD, "{'membership':'ban'}"));
    FX_DENY(&r, member(MOD, ALICE, "{'membership':'ban'}"));
    fx_room_free(&r);
    /* additional_creators */
    memset(&r, 0, sizeof r);
    r.v = fx_ver("12");
    r.create = fx_set(&r, ev("m.room.create", ALICE, "", "{'additional_creators':['" BOB "']}"));
    strcpy(r.room_id, r.create->room_id);
    fx_member(&r, ALICE, "join");
    fx_member(&r, BOB, "join");
    fx_member(&r, MOD, "join");
    fx_set(&r, pl(ALICE, "{'users':{'" MOD "':100}}"));
    ck_assert_int_eq(room_user_power_level(r.v, BOB, fx_lookup, &r), LLONG_MAX);
    FX_DENY(&r, pl(ALICE, "{'users':{'" BOB "':50}}"));
    FX_ALLOW(&r, member(BOB, MOD, "{'membership':'leave'}")); /* a creator kicks a 100 */
    FX_DENY(&r, member(MOD, BOB, "{'membership':'leave'}"));
}
END_TEST

START_TEST(user_power_level) {
    /* No power levels: the creator (content.creator before v11) has 100. */
    memset(&r, 0, sizeof r);
    r.v = fx_ver("10");
    strcpy(r.room_id, "!room:example.org");
    r.create = fx_set(&r, ev("m.room.create", ALICE, "", "{'creator':'" BOB "'}"));
    ck_assert_int_eq(room_user_power_level(r.v, BOB, fx_lookup, &r), 100);
    ck_assert_int_eq(room_user_power_level(r.v, ALICE, fx_lookup, &r), 0);
    fx_room_free(&r);
    memset(&r, 0, sizeof r);
    r.v = fx_ver("11");
    strcpy(r.room_id, "!room:example.org");
    r.create = fx_set(&r, ev("m.room.create", ALICE, "", "{'creator':'" BOB "'}"));
    ck_assert_int_eq(room_user_power_level(r.v, ALICE, fx_lookup, &r), 100);
    ck_assert_int_eq(room_user_power_level(r.v, BOB, fx_lookup, &r), 0);
    fx_set(&r, pl(ALICE, "{'users':{'" ALICE "':70},'users_default':5}"));
    ck_assert_int_eq(room_user_power_level(r.v, ALICE, fx_lookup, &r), 70);
    ck_assert_int_eq(room_user_power_level(r.v, BOB, fx_lookup, &r), 5);
    ck_assert_int_eq(room_user_power_level(r.v, BOB, NULL, NULL), 0);
}
END_TEST

/* ---- v1–v2 rule 11: redactions ------------------------------------------------ */

START_TEST(redaction_v1_domain_rule) {
    room("1");
    fx_member(&r, BOB, "join");
    /* bob's events get IDs on example.org, so he may redact those. */
    FX_ALLOW(&r, fx_event_json(&r, fx_json("{'type':'m.room.redaction','sender':'" BOB "',"
                                           "'content':{},'redacts':'$t:example.org'}")));
    FX_DENY(&r, fx_event_json(&r, fx_json("{'type':'m.room.redaction','sender':'" BOB "',"
                                          "'content':{},'redacts':'$t:other.org'}")));
    FX_ALLOW(&r, fx_event_json(&r, fx_json("{'type':'m.room.redaction','sender':'" MOD "',"
                                           "'content':{},'redacts':'$t:other.org'}")));
    fx_room_free(&r);
    /* v3+: allowed by auth; the check happens when applying it. */
    room("3");
    fx_member(&r, BOB, "join");
    FX_ALLOW(&r, fx_event_json(&r, fx_json("{'type':'m.room.redaction','sender':'" BOB "',"
                                           "'content':{},'redacts':'$t'}")));
}
END_TEST

START_TEST(redaction_applies_v3_plus) {
    room("11");
    fx_member(&r, BOB, "join");
    fx_member(&r, REMOTE, "join");
    room_event *msg = ev("m.room.message", BOB, NULL, "{}");
    room_event *remote_msg = ev("m.room.message", REMOTE, NULL, "{}");
    char c[128];
    snprintf(c, sizeof c, "{'redacts':'%s'}", msg->event_id);
    room_event *by_bob = ev("m.room.redaction", BOB, NULL, c);
    room_event *by_remote = ev("m.room.redaction", REMOTE, NULL, c);
    room_event *by_mod = ev("m.room.redaction", MOD, NULL, c);
    ck_assert(room_redaction_applies(by_bob, msg, fx_lookup, &r));      /* own server */
    ck_assert(!room_redaction_applies(by_remote, msg, fx_lookup, &r));  /* other server, no power */
    ck_assert(room_redaction_applies(by_mod, msg, fx_lookup, &r));      /* redact level */
    ck_assert(!room_redaction_applies(by_bob, remote_msg, fx_lookup, &r)); /* names another event */
    snprintf(c, sizeof c, "{'redacts':'%s'}", remote_msg->event_id);
    /* Same server as the original sender: even a user with no power. */
    ck_assert(room_redaction_applies(ev("m.room.redaction", REMOTE, NULL, c), remote_msg,
                                     fx_lookup, &r));
    ck_assert(!room_redaction_applies(ev("m.room.redaction", BOB, NULL, c), remote_msg,
                                      fx_lookup, &r));
}
END_TEST

/* ---- auth events: selection and rule 3 ------------------------------------------ */

/* The selection for an event; the pairs point into the event's JSON, which
 * lives until the next call. */
static size_t types_for(const char *ver, const char *json, room_state_key *out) {
    static json_t *last;
    json_decref(last);
    last = fx_json(json);
    return room_auth_types_for_event(fx_ver(ver), last, out, 8);
}

static bool has_key(const room_state_key *k, size_t n, const char *type, const char *sk) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(k[i].type, type) == 0 && strcmp(k[i].state_key, sk) == 0) return true;
    return false;
}

START_TEST(auth_types) {
    room_state_key k[8];
    size_t n = types_for("10", "{'type':'m.room.message','sender':'" BOB "'}", k);
    ck_assert_uint_eq(n, 3);
    ck_assert(has_key(k, n, "m.room.create", "") && has_key(k, n, "m.room.power_levels", "") &&
              has_key(k, n, "m.room.member", BOB));
    ck_assert_uint_eq(types_for("12", "{'type':'m.room.message','sender':'" BOB "'}", k), 2);
    ck_assert(!has_key(k, 2, "m.room.create", ""));
    ck_assert_uint_eq(types_for("12", "{'type':'m.room.create','sender':'" BOB "'}", k), 0);
    n = types_for("8", "{'type':'m.room.member','sender':'" BOB "','state_key':'" BOB "',"
                       "'content':{'membership':'join','join_authorised_via_users_server':'" MOD "'}}",
                  k);
    ck_assert_uint_eq(n, 5);
    ck_assert(has_key(k, n, "m.room.join_rules", "") && has_key(k, n, "m.room.member", MOD));
    n = types_for("7", "{'type':'m.room.member','sender':'" BOB "','state_key':'" BOB "',"
                       "'content':{'membership':'join','join_authorised_via_users_server':'" MOD "'}}",
                  k);
    ck_assert_uint_eq(n, 4); /* no restricted joins before v8 */
    n = types_for("10", "{'type':'m.room.member','sender':'" ALICE "','state_key':'" BOB "',"
                        "'content':{'membership':'invite','third_party_invite':{'signed':{'token':'t'}}}}",
                  k);
    ck_assert_uint_eq(n, 6);
    ck_assert(has_key(k, n, "m.room.third_party_invite", "t") && has_key(k, n, "m.room.member", BOB));
    n = types_for("10", "{'type':'m.room.member','sender':'" ALICE "','state_key':'" BOB "',"
                        "'content':{'membership':'ban'}}", k);
    ck_assert_uint_eq(n, 4);
    ck_assert(!has_key(k, n, "m.room.join_rules", ""));
    n = types_for("10", "{'type':'m.room.member','sender':'" BOB "','state_key':'" BOB "',"
                        "'content':{'membership':'knock'}}", k);
    ck_assert_uint_eq(n, 4);
    ck_assert(has_key(k, n, "m.room.join_rules", ""));
    ck_assert_uint_eq(room_auth_types_for_event(fx_ver("10"), NULL, k, 8), 0);
    n = types_for("10", "{'type':'m.room.message','sender':'" BOB "'}", k);
    ck_assert_uint_eq(room_auth_types_for_event(fx_ver("10"), NULL, k, 1), 0);
}
END_TEST

static int check_auth(const room_event *e, const room_event **auth, size_t n) {
    hs_err err = {0};
    int rc = room_auth_check_auth_events(e, auth, n, &err);
    if (rc) ck_assert_int_eq(err.status, 403);
    return rc;
}

START_TEST(auth_events_rule3) {
    room("10");
    const room_event *create = r.create, *pls = fx_lookup(&r, "m.room.power_levels", "");
    const room_event *alice = fx_lookup(&r, "m.room.member", ALICE);
    room_event *msg = ev("m.room.message", ALICE, NULL, "{}");
    const room_event *ok[] = {create, pls, alice};
    ck_assert_int_eq(check_auth(msg, ok, 3), 0);
    const room_event *dup[] = {create, pls, alice, alice};
    ck_assert_int_eq(check_auth(msg, dup, 4), -1);
    const room_event *no_create[] = {pls, alice};
    ck_assert_int_eq(check_auth(msg, no_create, 2), -1);
    room_event *rules = ev("m.room.join_rules", ALICE, "", "{'join_rule':'public'}");
    const room_event *extra[] = {create, rules};
    ck_assert_int_eq(check_auth(msg, extra, 2), -1);
    const room_event *not_state[] = {create, msg};
    ck_assert_int_eq(check_auth(msg, not_state, 2), -1);
    ((room_event *)pls)->rejected = true;
    ck_assert_int_eq(check_auth(msg, ok, 3), -1);
    ((room_event *)pls)->rejected = false;
    room_event *foreign = fx_event_json(&r, fx_json("{'type':'m.room.power_levels','sender':'" ALICE
                                                    "','state_key':'','room_id':'!o:example.org',"
                                                    "'content':{}}"));
    const room_event *other_room[] = {create, foreign};
    ck_assert_int_eq(check_auth(msg, other_room, 2), -1);
    ck_assert_int_eq(check_auth(r.create, NULL, 0), 0);
    const room_event *create_cites[] = {alice};
    ck_assert_int_eq(check_auth(r.create, create_cites, 1), -1);
    fx_room_free(&r);
    /* v12: the create event must not be among them. */
    room("12");
    msg = ev("m.room.message", ALICE, NULL, "{}");
    const room_event *v12_ok[] = {fx_lookup(&r, "m.room.power_levels", ""),
                                  fx_lookup(&r, "m.room.member", ALICE)};
    ck_assert_int_eq(check_auth(msg, v12_ok, 2), 0);
    const room_event *v12_bad[] = {r.create, fx_lookup(&r, "m.room.member", ALICE)};
    ck_assert_int_eq(check_auth(msg, v12_bad, 2), -1);
}
END_TEST

/* Every version accepts the ordinary life of a room. */
START_TEST(ordinary_room_all_versions) {
    for (const room_version *v = room_versions_all(); v->id; v++) {
        room(v->id);
        join_rule("public");
        FX_ALLOW(&r, member(BOB, BOB, "{'membership':'join'}"));
        fx_member(&r, BOB, "join");
        FX_ALLOW(&r, ev("m.room.message", BOB, NULL, "{'body':'hi'}"));
        FX_ALLOW(&r, ev("m.room.name", ALICE, "", "{'name':'n'}"));
        FX_ALLOW(&r, member(ALICE, BOB, "{'membership':'ban'}"));
        FX_ALLOW(&r, member(BOB, BOB, "{'membership':'leave'}"));
        fx_room_free(&r);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("rooms_auth");
    TCase *tc = tcase_create("auth");
    tcase_add_checked_fixture(tc, NULL, teardown);
    const TTest *tests[] = {
        create_rules, create_rules_v12, no_create_in_state, other_room,
        v12_room_is_the_create_event, federate_false, aliases_before_v6,
        member_needs_state_key_and_membership, creator_first_join, join_basics, join_invite_only,
        join_without_join_rules_is_invite_only, join_knock_rule_by_version, join_restricted,
        join_knock_restricted, invite, third_party_invite_member, third_party_invite_event,
        leave_self, kick, unban, ban, knock_by_version, sender_must_be_joined, required_power,
        no_power_levels_defaults, state_key_user_rule, power_levels_first_event,
        power_levels_format, stringy_power_levels_in_effect, power_levels_changes,
        notifications_unchecked_before_v6, v12_creators, user_power_level,
        redaction_v1_domain_rule, redaction_applies_v3_plus, auth_types, auth_events_rule3, ordinary_room_all_versions,
    };
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
