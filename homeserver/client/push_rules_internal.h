/* push_rules_internal.h — shared between the push rule files of client/. */
#ifndef CLIENT_PUSH_RULES_INTERNAL_H
#define CLIENT_PUSH_RULES_INTERNAL_H

#include "push_rules.h"

/* The default rule set with placeholders (see push_rules_default.c). */
const json_t *push_defaults(void);
const json_t *push_default_rules(push_kind k);
const json_t *push_default_rule(push_kind k, const char *rule_id);

/* The mention rules that look at content.body, skipped when m.mentions is set. */
bool push_rule_is_legacy_mention(const char *rule_id);

#endif
