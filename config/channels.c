/* channels.c — the channel keys that need more than a table row:
 *
 *   encryption_enabled_by_default_for_room_type: all | invite | off
 *     (Synapse's key and values; YAML 1.1 reads a bare `off` as false, which
 *     Synapse also accepts, so false counts as off here too)
 *
 *   room_list_publication_rules:          (Synapse's format)
 *     - user_id: "@alice:example.org"     globs, "*" when absent, matched
 *       alias: "#*:example.org"           against whole IDs, case-insensitively
 *       room_id: "*"
 *       action: allow | deny              default allow
 *
 * Absent (or null), publishing is left to server admins and each room's
 * moderators; given, the first matching rule decides and no match denies. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_internal.h"

static bool check_encryption_default(cfg_ctx *x, const cfg_node *v, const char *key, int *out) {
    bool b;
    if (v->kind == CFG_SCALAR && v->plain && cfg_bool_value(v, &b) && !b) {
        *out = CFG_ENCRYPT_OFF;
        return true;
    }
    char buf[80];
    if (v->kind == CFG_SCALAR) {
        if (!strcasecmp(v->str, "all")) return *out = CFG_ENCRYPT_ALL, true;
        if (!strcasecmp(v->str, "invite")) return *out = CFG_ENCRYPT_INVITE, true;
        if (!strcasecmp(v->str, "off")) return *out = CFG_ENCRYPT_OFF, true;
    }
    cfg_error(x, v->line, key, "expected all, invite or off, got %s",
              cfg_node_what(v, buf, sizeof buf));
    return false;
}

bool cfg_parse_encryption_default(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                                  void *base) {
    (void)line;
    cfg *c = base;
    if (!v) return c->encryption_default = CFG_ENCRYPT_INVITE, true;
    return check_encryption_default(x, v, key, &c->encryption_default);
}

static void rule_free(cfg_room_rule *r) {
    free(r->user_id);
    free(r->room_id);
    free(r->alias);
}

/* One field of a rule: a string (a glob), or the action. */
static bool rule_field(cfg_ctx *x, const char *k, const cfg_node *v, const char *ikey,
                       cfg_room_rule *r) {
    char **slot = !strcmp(k, "user_id") ? &r->user_id
                  : !strcmp(k, "room_id") ? &r->room_id
                  : !strcmp(k, "alias")   ? &r->alias
                                          : NULL;
    if (slot) return cfg_node_is_null(v) || cfg_get_string(x, v, ikey, slot);
    if (!strcmp(k, "action")) {
        if (v->kind == CFG_SCALAR && !strcmp(v->str, "allow")) return r->allow = true, true;
        if (v->kind == CFG_SCALAR && !strcmp(v->str, "deny")) return r->allow = false, true;
        char buf[80];
        cfg_error(x, v->line, ikey, "expected allow or deny, got %s", cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    cfg_warning(x, v->line, ikey, "unknown key");
    return true;
}

static bool parse_rule(cfg_ctx *x, const cfg_node *item, const char *key, cfg_room_rule *r) {
    char buf[80], ikey[CFG_PATH_MAX];
    r->allow = true;
    if (item->kind != CFG_MAP) {
        cfg_error(x, item->line, key, "expected a mapping such as {user_id: '*', action: allow}, got %s",
                  cfg_node_what(item, buf, sizeof buf));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < item->n; i++) {
        cfg_path_key(ikey, sizeof ikey, key, item->keys[i]->str);
        ok &= rule_field(x, item->keys[i]->str, item->vals[i], ikey, r);
    }
    char **globs[] = {&r->user_id, &r->room_id, &r->alias};
    for (int i = 0; i < 3 && ok; i++)
        if (!*globs[i] && !(*globs[i] = strdup("*"))) {
            cfg_oom(x, item->line, key);
            ok = false;
        }
    return ok;
}

bool cfg_parse_room_rules(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base) {
    (void)line;
    cfg *c = base;
    char buf[80], ikey[CFG_PATH_MAX];
    if (!v) return true; /* absent or null: the default */
    if (v->kind != CFG_SEQ) {
        cfg_error(x, v->line, key, "expected a list of rules, got %s", cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    cfg_room_rule *rules = calloc(v->n ? v->n : 1, sizeof *rules);
    if (!rules) return cfg_oom(x, v->line, key), false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        cfg_path_index(ikey, sizeof ikey, key, i);
        ok &= parse_rule(x, v->vals[i], ikey, &rules[i]);
    }
    if (!ok) {
        for (size_t i = 0; i < v->n; i++) rule_free(&rules[i]);
        free(rules);
        return false;
    }
    c->has_room_list_publication_rules = true;
    c->room_list_publication_rules = rules;
    c->n_room_list_publication_rules = v->n;
    return true;
}

void cfg_channels_free(cfg *c) {
    for (size_t i = 0; i < c->n_room_list_publication_rules; i++)
        rule_free(&c->room_list_publication_rules[i]);
    free(c->room_list_publication_rules);
    c->room_list_publication_rules = NULL;
    c->n_room_list_publication_rules = 0;
}
