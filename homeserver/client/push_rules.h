/* push_rules.h — push rules as the spec (v1.19, "Push Notifications") defines
 * them: the server-default rule set, a user's rules merged with it, and the
 * evaluation of a rule set against an event. Pure: no database, no HTTP.
 *
 * A user's stored rules travel as a JSON object keyed by kind ("override",
 * "content", "room", "sender", "underride"), each an array of rules in client
 * format ({rule_id, actions, enabled, conditions | pattern}), most important
 * first. Changes to server-default rules travel as an object keyed by kind,
 * then rule_id: {"enabled": bool?, "actions": [...]?}. Either may be NULL. */
#ifndef CLIENT_PUSH_RULES_H
#define CLIENT_PUSH_RULES_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/core/err.h"

/* The kinds, in the order they are checked. */
typedef enum push_kind {
    PUSH_OVERRIDE,
    PUSH_CONTENT,
    PUSH_ROOM,
    PUSH_SENDER,
    PUSH_UNDERRIDE,
    PUSH_KIND_COUNT
} push_kind;

/* "override" … "underride"; push_kind_parse gives -1 for anything else. */
const char *push_kind_name(push_kind k);
int push_kind_parse(const char *name);

/* Is rule_id a server-default rule of this kind? */
bool push_rule_is_default(push_kind k, const char *rule_id);

/* The whole rule set a user sees (GET /pushrules/global/): every kind, the
 * user's rules before the defaults of the same kind (.m.rule.master before
 * everything), default rules with the user's changes applied and the user's
 * ID / localpart filled in. New reference. */
json_t *push_rules_ruleset(const char *user_id, const json_t *user_rules, const json_t *changes);

/* What evaluation needs to know beyond the event. */
typedef struct push_ctx {
    const char *user_id;      /* whose rules */
    const char *display_name; /* the user's display name in the room, NULL: none */
    long long member_count;   /* joined members of the room */
    /* sender_notification_permission: the room's m.room.power_levels content
     * (NULL: none) and the sender's power level. If load_power is set, it is
     * called the first time a rule needs them (once per ctx) to fill both. */
    const json_t *power_levels;
    long long sender_power;
    int (*load_power)(void *arg, const json_t **power_levels, long long *sender_power);
    void *load_arg;
    bool power_loaded;        /* set by the evaluator after load_power */
    /* org.pvyhs.recipient_permission (pvyhs's knock rule): the power level of
     * user_id, the recipient, in the same state; NULL: the condition never
     * matches. Called after load_power. */
    int (*load_user_power)(void *arg, const char *user_id, long long *power);
} push_ctx;

typedef struct push_result {
    bool matched;             /* some enabled rule matched */
    bool notify;              /* its actions hold "notify" */
    bool highlight;           /* a highlight tweak, without value or with true */
    const char *sound;        /* the sound tweak's value (borrowed from actions), or NULL */
    const char *rule_id;      /* the matching rule (borrowed), or NULL */
    push_kind kind;
    json_t *actions;          /* its actions without legacy ones (owned), or NULL */
} push_result;

/* Evaluate the user's rules (user_rules, changes as above) against event (a
 * whole event: type, sender, room_id, content …). 0, or -1 when load_power
 * failed. out is cleared first; free it with push_result_clear. */
int push_rules_evaluate(const json_t *user_rules, const json_t *changes, const json_t *event,
                        push_ctx *ctx, push_result *out);
void push_result_clear(push_result *r);

/* One condition against an event: 1 match, 0 no match, -1 load_power failed.
 * Unknown or malformed conditions never match, as the spec requires. */
int push_condition_matches(const json_t *cond, const json_t *event, push_ctx *ctx);

/* The value at a dot-separated property path ("content.m\.relates_to.rel_type",
 * with "\." and "\\" escapes), borrowed, or NULL. */
const json_t *push_event_property(const json_t *event, const char *path);

/* Glob matching ('*' any run, '?' one character), case-insensitive. Whole: the
 * entire value; words: any substring starting and ending at a word boundary
 * (the spec's rule for content.body). literal: '*' and '?' are plain. */
enum push_glob_mode { PUSH_GLOB_WHOLE, PUSH_GLOB_WORDS };
bool push_glob_match(const char *pattern, const char *value, enum push_glob_mode mode,
                     bool literal);

/* Check the actions array of a request: "notify", the legacy "dont_notify" /
 * "coalesce", or {"set_tweak": string, …}. Returns a copy to store, or NULL
 * with 400 M_INVALID_PARAM. The legacy actions are kept, so the client reads
 * back the rule it set (as Synapse stores them); since v1.7 they do nothing
 * when a rule is evaluated (read_actions skips them). */
json_t *push_actions_clean(const json_t *actions, hs_err *err);

/* Strings inside v that PostgreSQL's jsonb cannot store (U+0000)? */
bool push_json_has_nul(const json_t *v);

#endif
