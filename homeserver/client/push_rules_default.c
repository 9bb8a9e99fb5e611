/* push_rules_default.c — the server-default push rules.
 *
 * The spec's v1.19 rules, written as the spec writes them, in its order. Three
 * more are kept as Synapse keeps them: the mention rules the spec dropped in
 * v1.17 (.m.rule.contains_display_name, .m.rule.roomnotif,
 * .m.rule.contains_user_name), which Element's notification settings still
 * show and which clients that send no m.mentions (bots, older clients) need;
 * as v1.7 said, they are skipped for events that carry m.mentions. And
 * Synapse's .im.vector.jitsi, which Element's group calls rely on. And one of
 * pvyhs's own, .org.pvyhs.rule.knock before .m.rule.member_event: a request to
 * join notifies the members who can answer it (condition kind
 * org.pvyhs.recipient_permission, evaluated in push_rules.c).
 *
 * The user's ID and localpart are placeholders here ("pattern_type" /
 * "value_type": "user_id" | "user_localpart", as Synapse has them) and are
 * filled in per user when rules are shown or evaluated. */
#include <pthread.h>
#include <string.h>

#include "push_rules_internal.h"

#define SOUND(v) "{\"set_tweak\": \"sound\", \"value\": \"" v "\"}"
#define HIGHLIGHT "{\"set_tweak\": \"highlight\"}"
#define MATCH(k, p) "{\"kind\": \"event_match\", \"key\": \"" k "\", \"pattern\": \"" p "\"}"

static const char defaults_json[] =
    "{\"override\": ["
    "{\"rule_id\": \".m.rule.master\", \"enabled\": false, \"conditions\": [], \"actions\": []},"
    "{\"rule_id\": \".m.rule.suppress_notices\", \"enabled\": true,"
    " \"conditions\": [" MATCH("content.msgtype", "m.notice") "], \"actions\": []},"
    "{\"rule_id\": \".m.rule.invite_for_me\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.member") ", " MATCH("content.membership", "invite") ","
    "  {\"kind\": \"event_match\", \"key\": \"state_key\", \"pattern_type\": \"user_id\"}],"
    " \"actions\": [\"notify\", " SOUND("default") "]},"
    /* pvyhs: a knock notifies the moderators who can answer it (invite or kick),
     * highlighted: it waits for them, and clients such as Element count only
     * highlights from the server in encrypted rooms. */
    "{\"rule_id\": \".org.pvyhs.rule.knock\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.member") ", " MATCH("content.membership", "knock") ","
    "  {\"kind\": \"org.pvyhs.recipient_permission\", \"key\": \"invite\"},"
    "  {\"kind\": \"org.pvyhs.recipient_permission\", \"key\": \"kick\"}],"
    " \"actions\": [\"notify\", " SOUND("default") ", " HIGHLIGHT "]},"
    "{\"rule_id\": \".m.rule.member_event\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.member") "], \"actions\": []},"
    "{\"rule_id\": \".m.rule.is_user_mention\", \"enabled\": true,"
    " \"conditions\": [{\"kind\": \"event_property_contains\","
    "  \"key\": \"content.m\\\\.mentions.user_ids\", \"value_type\": \"user_id\"}],"
    " \"actions\": [\"notify\", " SOUND("default") ", " HIGHLIGHT "]},"
    "{\"rule_id\": \".m.rule.contains_display_name\", \"enabled\": true,"
    " \"conditions\": [{\"kind\": \"contains_display_name\"}],"
    " \"actions\": [\"notify\", " SOUND("default") ", " HIGHLIGHT "]},"
    "{\"rule_id\": \".m.rule.is_room_mention\", \"enabled\": true,"
    " \"conditions\": [{\"kind\": \"event_property_is\", \"key\": \"content.m\\\\.mentions.room\","
    "  \"value\": true}, {\"kind\": \"sender_notification_permission\", \"key\": \"room\"}],"
    " \"actions\": [\"notify\", " HIGHLIGHT "]},"
    "{\"rule_id\": \".m.rule.roomnotif\", \"enabled\": true,"
    " \"conditions\": [" MATCH("content.body", "@room") ","
    "  {\"kind\": \"sender_notification_permission\", \"key\": \"room\"}],"
    " \"actions\": [\"notify\", " HIGHLIGHT "]},"
    "{\"rule_id\": \".m.rule.tombstone\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.tombstone") ", " MATCH("state_key", "") "],"
    " \"actions\": [\"notify\", " HIGHLIGHT "]},"
    "{\"rule_id\": \".m.rule.reaction\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.reaction") "], \"actions\": []},"
    "{\"rule_id\": \".m.rule.room.server_acl\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.server_acl") ", " MATCH("state_key", "") "],"
    " \"actions\": []},"
    "{\"rule_id\": \".m.rule.suppress_edits\", \"enabled\": true,"
    " \"conditions\": [{\"kind\": \"event_property_is\","
    "  \"key\": \"content.m\\\\.relates_to.rel_type\", \"value\": \"m.replace\"}],"
    " \"actions\": []}"
    "],"
    "\"content\": ["
    "{\"rule_id\": \".m.rule.contains_user_name\", \"enabled\": true,"
    " \"pattern_type\": \"user_localpart\","
    " \"actions\": [\"notify\", " SOUND("default") ", " HIGHLIGHT "]}"
    "],"
    "\"room\": [], \"sender\": [],"
    "\"underride\": ["
    "{\"rule_id\": \".m.rule.call\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.call.invite") "],"
    " \"actions\": [\"notify\", " SOUND("ring") "]},"
    "{\"rule_id\": \".m.rule.encrypted_room_one_to_one\", \"enabled\": true,"
    " \"conditions\": [{\"kind\": \"room_member_count\", \"is\": \"2\"}, "
    MATCH("type", "m.room.encrypted") "],"
    " \"actions\": [\"notify\", " SOUND("default") "]},"
    "{\"rule_id\": \".m.rule.room_one_to_one\", \"enabled\": true,"
    " \"conditions\": [{\"kind\": \"room_member_count\", \"is\": \"2\"}, "
    MATCH("type", "m.room.message") "],"
    " \"actions\": [\"notify\", " SOUND("default") "]},"
    "{\"rule_id\": \".m.rule.message\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.message") "], \"actions\": [\"notify\"]},"
    "{\"rule_id\": \".m.rule.encrypted\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "m.room.encrypted") "], \"actions\": [\"notify\"]},"
    "{\"rule_id\": \".im.vector.jitsi\", \"enabled\": true,"
    " \"conditions\": [" MATCH("type", "im.vector.modular.widgets") ", " MATCH("content.type", "jitsi")
    ", " MATCH("state_key", "*") "],"
    " \"actions\": [\"notify\", {\"set_tweak\": \"highlight\", \"value\": false}]}"
    "]}";

static json_t *defaults;
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void defaults_init(void) { defaults = json_loads(defaults_json, 0, NULL); }

/* Never freed: read-only after start, shared by every thread. */
const json_t *push_defaults(void) {
    pthread_once(&defaults_once, defaults_init);
    return defaults;
}

const json_t *push_default_rules(push_kind k) {
    return json_object_get(push_defaults(), push_kind_name(k));
}

const json_t *push_default_rule(push_kind k, const char *rule_id) {
    size_t i;
    const json_t *r;
    json_array_foreach(push_default_rules(k), i, r) {
        if (!strcmp(json_string_value(json_object_get(r, "rule_id")), rule_id)) return r;
    }
    return NULL;
}

bool push_rule_is_default(push_kind k, const char *rule_id) {
    return rule_id[0] == '.' && push_default_rule(k, rule_id) != NULL;
}

bool push_rule_is_legacy_mention(const char *rule_id) {
    return !strcmp(rule_id, ".m.rule.contains_display_name") ||
           !strcmp(rule_id, ".m.rule.roomnotif") || !strcmp(rule_id, ".m.rule.contains_user_name");
}
