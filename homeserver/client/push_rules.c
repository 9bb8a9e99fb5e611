/* push_rules.c — merging a user's push rules with the defaults, and deciding
 * what an event does for that user (spec: "Push Rules", "Conditions").
 *
 * The first enabled rule that matches, in kind order (override, content,
 * room, sender, underride; within a kind the user's rules before the
 * defaults, .m.rule.master before all), gives the actions. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_rules_internal.h"

static const char *const kind_names[PUSH_KIND_COUNT] = {"override", "content", "room", "sender",
                                                        "underride"};

const char *push_kind_name(push_kind k) { return kind_names[k]; }

int push_kind_parse(const char *name) {
    for (int k = 0; k < PUSH_KIND_COUNT; k++)
        if (name && !strcmp(name, kind_names[k])) return k;
    return -1;
}

/* "@alice:example.org" -> "alice" into buf. */
static const char *localpart(const char *user_id, char *buf, size_t len) {
    const char *colon = strchr(user_id, ':');
    size_t n = colon ? (size_t)(colon - user_id) : strlen(user_id);
    if (n > 0 && user_id[0] == '@') user_id++, n--;
    snprintf(buf, len, "%.*s", (int)n, user_id);
    return buf;
}

/* ---- a rule as evaluation and display see it ---- */

typedef struct rule_view {
    push_kind kind;
    const json_t *rule;    /* stored user rule or default template */
    const char *rule_id;
    bool is_default, enabled;
    const json_t *actions;
} rule_view;

/* Return nonzero to stop the walk (and make walk return it). */
typedef int (*rule_visit)(const rule_view *v, void *arg);

static const json_t *change_of(const json_t *changes, push_kind k, const char *rule_id) {
    return json_object_get(json_object_get(changes, kind_names[k]), rule_id);
}

static int visit_default(push_kind k, const json_t *rule, const json_t *changes, rule_visit fn,
                         void *arg) {
    rule_view v = {.kind = k, .rule = rule, .is_default = true};
    v.rule_id = json_string_value(json_object_get(rule, "rule_id"));
    const json_t *ch = change_of(changes, k, v.rule_id);
    const json_t *en = json_object_get(ch, "enabled");
    const json_t *act = json_object_get(ch, "actions");
    v.enabled = json_is_boolean(en) ? json_is_true(en) : json_is_true(json_object_get(rule, "enabled"));
    v.actions = json_is_array(act) ? act : json_object_get(rule, "actions");
    return fn(&v, arg);
}

static int walk(const json_t *user_rules, const json_t *changes, rule_visit fn, void *arg) {
    for (int k = 0; k < PUSH_KIND_COUNT; k++) {
        const json_t *defs = push_default_rules(k), *r;
        size_t i;
        int rc;
        /* .m.rule.master outranks even the user's own override rules. */
        if (k == PUSH_OVERRIDE && (rc = visit_default(k, json_array_get(defs, 0), changes, fn, arg)))
            return rc;
        json_array_foreach(json_object_get(user_rules, kind_names[k]), i, r) {
            const char *id = json_string_value(json_object_get(r, "rule_id"));
            if (!id) continue;
            const json_t *en = json_object_get(r, "enabled");
            rule_view v = {.kind = k, .rule = r, .rule_id = id,
                           .enabled = !json_is_boolean(en) || json_is_true(en),
                           .actions = json_object_get(r, "actions")};
            if ((rc = fn(&v, arg))) return rc;
        }
        json_array_foreach(defs, i, r) {
            if (k == PUSH_OVERRIDE && i == 0) continue;
            if ((rc = visit_default(k, r, changes, fn, arg))) return rc;
        }
    }
    return 0;
}

/* ---- the rule set as clients see it ---- */

typedef struct show_job {
    json_t *set;
    const char *user_id;
    char lp[256];
} show_job;

/* pattern_type / value_type placeholders become the user's values. */
static void fill_placeholders(json_t *o, const show_job *j) {
    static const char *const keys[][2] = {{"pattern_type", "pattern"}, {"value_type", "value"}};
    for (size_t i = 0; i < 2; i++) {
        const char *t = json_string_value(json_object_get(o, keys[i][0]));
        if (!t) continue;
        const char *val = !strcmp(t, "user_id") ? j->user_id : !strcmp(t, "user_localpart") ? j->lp : "";
        json_object_set_new(o, keys[i][1], json_string(val));
        json_object_del(o, keys[i][0]);
    }
}

static int show_rule(const rule_view *v, void *arg) {
    show_job *j = arg;
    /* Copies: the defaults are shared by every thread and must stay untouched. */
    json_t *out = json_pack("{s:s, s:b, s:b, s:o}", "rule_id", v->rule_id, "default", v->is_default,
                            "enabled", v->enabled, "actions",
                            v->actions ? json_deep_copy(v->actions) : json_array());
    if (v->kind == PUSH_OVERRIDE || v->kind == PUSH_UNDERRIDE) {
        json_t *conds = json_deep_copy(json_object_get(v->rule, "conditions"));
        if (!json_is_array(conds)) json_decref(conds), conds = json_array();
        size_t i;
        json_t *c;
        json_array_foreach(conds, i, c) fill_placeholders(c, j);
        json_object_set_new(out, "conditions", conds);
    } else if (v->kind == PUSH_CONTENT) {
        const json_t *pat = json_object_get(v->rule, "pattern");
        if (pat) json_object_set(out, "pattern", (json_t *)pat);
        else json_object_set(out, "pattern_type", json_object_get(v->rule, "pattern_type"));
        fill_placeholders(out, j);
    }
    json_array_append_new(json_object_get(j->set, kind_names[v->kind]), out);
    return 0;
}

json_t *push_rules_ruleset(const char *user_id, const json_t *user_rules, const json_t *changes) {
    show_job j = {.set = json_object(), .user_id = user_id};
    localpart(user_id, j.lp, sizeof j.lp);
    for (int k = 0; k < PUSH_KIND_COUNT; k++) json_object_set_new(j.set, kind_names[k], json_array());
    walk(user_rules, changes, show_rule, &j);
    return j.set;
}

/* ---- conditions ---- */

const json_t *push_event_property(const json_t *event, const char *path) {
    const json_t *cur = event;
    size_t len = strlen(path);
    char *seg = malloc(len + 1);
    if (!seg) return NULL;
    const char *p = path;
    while (cur) {
        size_t n = 0;
        for (; *p && *p != '.'; p++) {
            /* Only "\." and "\\" are escapes; any other backslash is literal. */
            if (*p == '\\' && (p[1] == '.' || p[1] == '\\')) p++;
            seg[n++] = *p;
        }
        seg[n] = 0;
        cur = json_is_object(cur) ? json_object_get(cur, seg) : NULL;
        if (!*p) break;
        p++;
    }
    free(seg);
    return cur;
}

/* The spec's non-compound values: string, integer, boolean, null. */
static bool is_simple(const json_t *v) {
    return json_is_string(v) || json_is_integer(v) || json_is_boolean(v) || json_is_null(v);
}

static bool simple_equal(const json_t *a, const json_t *b) {
    if (!is_simple(a) || !is_simple(b)) return false;
    return json_equal((json_t *)a, (json_t *)b);
}

/* The condition's pattern / value, the user's ID or localpart for a placeholder. */
static const json_t *cond_value(const json_t *cond, const char *field, push_ctx *ctx,
                                json_t **tmp) {
    const json_t *v = json_object_get(cond, field);
    if (v) return v;
    char type_key[32], lp[256];
    snprintf(type_key, sizeof type_key, "%s_type", field);
    const char *t = json_string_value(json_object_get(cond, type_key));
    if (!t || !ctx->user_id) return NULL;
    if (!strcmp(t, "user_id")) return *tmp = json_string(ctx->user_id);
    if (!strcmp(t, "user_localpart"))
        return *tmp = json_string(localpart(ctx->user_id, lp, sizeof lp));
    return NULL;
}

static int event_match(const json_t *cond, const json_t *event, push_ctx *ctx) {
    const char *key = json_string_value(json_object_get(cond, "key"));
    json_t *tmp = NULL;
    const char *pattern = json_string_value(cond_value(cond, "pattern", ctx, &tmp));
    const char *val = key ? json_string_value(push_event_property(event, key)) : NULL;
    bool hit = pattern && val &&
               push_glob_match(pattern, val,
                               !strcmp(key, "content.body") ? PUSH_GLOB_WORDS : PUSH_GLOB_WHOLE,
                               false);
    json_decref(tmp);
    return hit;
}

static int property_is(const json_t *cond, const json_t *event, push_ctx *ctx, bool contains) {
    const char *key = json_string_value(json_object_get(cond, "key"));
    json_t *tmp = NULL;
    const json_t *want = cond_value(cond, "value", ctx, &tmp);
    const json_t *have = key ? push_event_property(event, key) : NULL;
    bool hit = false;
    if (want && have && !contains) {
        hit = simple_equal(have, want);
    } else if (want && json_is_array(have)) {
        size_t i;
        const json_t *el;
        json_array_foreach(have, i, el) if ((hit = simple_equal(el, want))) break;
    }
    json_decref(tmp);
    return hit;
}

static int display_name_match(const json_t *event, push_ctx *ctx) {
    const char *body = json_string_value(push_event_property(event, "content.body"));
    const char *name = ctx->display_name;
    return body && name && *name && push_glob_match(name, body, PUSH_GLOB_WORDS, true);
}

/* "is": a decimal integer with an optional ==, <, >, <= or >= before it. */
static int member_count(const json_t *cond, push_ctx *ctx) {
    const char *is = json_string_value(json_object_get(cond, "is"));
    if (!is) return 0;
    static const char *const ops[] = {"==", "<=", ">=", "<", ">", ""};
    size_t op = 0;
    while (strncmp(is, ops[op], strlen(ops[op])) != 0) op++;
    const char *num = is + strlen(ops[op]);
    if (*num < '0' || *num > '9' || strlen(num) > 15) return 0;
    for (const char *p = num; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    long long n = atoll(num), c = ctx->member_count;
    switch (op) {
    case 0: case 5: return c == n;
    case 1: return c <= n;
    case 2: return c >= n;
    case 3: return c < n;
    default: return c > n;
    }
}

/* A power level value: an integer, or (before room version 10) a string of one. */
static bool level_of(const json_t *v, long long *out) {
    if (json_is_integer(v)) return *out = json_integer_value(v), true;
    const char *s = json_string_value(v);
    if (!s || !*s) return false;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (*end) return false;
    return *out = n, true;
}

static int sender_permission(const json_t *cond, push_ctx *ctx) {
    const char *key = json_string_value(json_object_get(cond, "key"));
    if (!key) return 0;
    if (!ctx->power_loaded && ctx->load_power) {
        if (ctx->load_power(ctx->load_arg, &ctx->power_levels, &ctx->sender_power) < 0) return -1;
    }
    ctx->power_loaded = true;
    long long need = 50; /* the spec's default for notifications.room */
    const json_t *v = json_object_get(json_object_get(ctx->power_levels, "notifications"), key);
    if (v && !level_of(v, &need)) return 0;
    return ctx->sender_power >= need;
}

/* pvyhs: may the recipient do what the power level named by "key" allows
 * (invite, kick …)? The knock rule uses it to reach only moderators. */
static int recipient_permission(const json_t *cond, push_ctx *ctx) {
    const char *key = json_string_value(json_object_get(cond, "key"));
    if (!key || !ctx->load_user_power || !ctx->load_power) return 0;
    if (!ctx->power_loaded &&
        ctx->load_power(ctx->load_arg, &ctx->power_levels, &ctx->sender_power) < 0)
        return -1;
    ctx->power_loaded = true;
    long long need = strcmp(key, "invite") ? 50 : 0, have; /* the spec's defaults */
    const json_t *v = json_object_get(ctx->power_levels, key);
    if (v && !level_of(v, &need)) return 0;
    if (ctx->load_user_power(ctx->load_arg, ctx->user_id, &have) < 0) return -1;
    return have >= need;
}

int push_condition_matches(const json_t *cond, const json_t *event, push_ctx *ctx) {
    const char *kind = json_string_value(json_object_get(cond, "kind"));
    if (!kind) return 0;
    if (!strcmp(kind, "event_match")) return event_match(cond, event, ctx);
    if (!strcmp(kind, "event_property_is")) return property_is(cond, event, ctx, false);
    if (!strcmp(kind, "event_property_contains")) return property_is(cond, event, ctx, true);
    if (!strcmp(kind, "contains_display_name")) return display_name_match(event, ctx);
    if (!strcmp(kind, "room_member_count")) return member_count(cond, ctx);
    if (!strcmp(kind, "sender_notification_permission")) return sender_permission(cond, ctx);
    if (!strcmp(kind, "org.pvyhs.recipient_permission")) return recipient_permission(cond, ctx);
    return 0;
}

/* ---- evaluation ---- */

typedef struct eval_job {
    const json_t *event;
    push_ctx *ctx;
    bool has_mentions;
    const rule_view *hit;
    rule_view hit_copy;
} eval_job;

/* 1 match, 0 not, -1 error. */
static int rule_matches(const rule_view *v, eval_job *j) {
    const json_t *ev = j->event;
    switch (v->kind) {
    case PUSH_ROOM:
    case PUSH_SENDER: {
        const char *field = v->kind == PUSH_ROOM ? "room_id" : "sender";
        const char *have = json_string_value(json_object_get(ev, field));
        return have && !strcmp(have, v->rule_id);
    }
    case PUSH_CONTENT: {
        json_t *tmp = NULL;
        const char *pat = json_string_value(cond_value(v->rule, "pattern", j->ctx, &tmp));
        const char *body = json_string_value(push_event_property(ev, "content.body"));
        bool hit = pat && body && push_glob_match(pat, body, PUSH_GLOB_WORDS, false);
        json_decref(tmp);
        return hit;
    }
    default: {
        size_t i;
        const json_t *c;
        json_array_foreach(json_object_get(v->rule, "conditions"), i, c) {
            int m = push_condition_matches(c, ev, j->ctx);
            if (m <= 0) return m;
        }
        return 1;
    }
    }
}

static int eval_rule(const rule_view *v, void *arg) {
    eval_job *j = arg;
    if (!v->enabled || !v->rule_id) return 0;
    /* v1.7: the body-based mention rules stand aside when m.mentions is there. */
    if (v->is_default && j->has_mentions && push_rule_is_legacy_mention(v->rule_id)) return 0;
    int m = rule_matches(v, j);
    if (m < 0) return -1;
    if (!m) return 0;
    j->hit_copy = *v;
    j->hit = &j->hit_copy;
    return 1;
}

static bool is_legacy_action(const json_t *a) {
    const char *s = json_string_value(a);
    return s && (!strcmp(s, "dont_notify") || !strcmp(s, "coalesce"));
}

static void read_actions(push_result *out, const json_t *actions) {
    out->actions = json_array();
    size_t i;
    const json_t *a;
    json_array_foreach(actions, i, a) {
        if (is_legacy_action(a)) continue;
        json_array_append(out->actions, (json_t *)a);
        const char *s = json_string_value(a);
        const char *tweak = json_string_value(json_object_get(a, "set_tweak"));
        const json_t *val = json_object_get(a, "value");
        if (s && !strcmp(s, "notify")) out->notify = true;
        if (tweak && !strcmp(tweak, "highlight")) out->highlight = !val || json_is_true(val);
        if (tweak && !strcmp(tweak, "sound")) out->sound = json_string_value(val);
    }
}

int push_rules_evaluate(const json_t *user_rules, const json_t *changes, const json_t *event,
                        push_ctx *ctx, push_result *out) {
    memset(out, 0, sizeof *out);
    eval_job j = {.event = event, .ctx = ctx};
    j.has_mentions = json_object_get(json_object_get(event, "content"), "m.mentions") != NULL;
    int rc = walk(user_rules, changes, eval_rule, &j);
    if (rc < 0) return -1;
    if (!j.hit) return 0;
    out->matched = true;
    out->rule_id = j.hit->rule_id;
    out->kind = j.hit->kind;
    read_actions(out, j.hit->actions);
    return 0;
}

void push_result_clear(push_result *r) {
    json_decref(r->actions);
    memset(r, 0, sizeof *r);
}

/* ---- request checks ---- */

json_t *push_actions_clean(const json_t *actions, hs_err *err) {
    if (!json_is_array(actions))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'actions' must be an array"), NULL;
    json_t *out = json_array();
    size_t i;
    const json_t *a;
    json_array_foreach(actions, i, a) {
        const char *s = json_string_value(a);
        if (s && (!strcmp(s, "notify") || is_legacy_action(a))) {
            json_array_append(out, (json_t *)a);
        } else if (json_is_object(a) && json_is_string(json_object_get(a, "set_tweak"))) {
            json_array_append(out, (json_t *)a);
        } else {
            json_decref(out);
            return hs_err_set(err, 400, "M_INVALID_PARAM", "unrecognised action at index %zu", i),
                   NULL;
        }
    }
    return out;
}

bool push_json_has_nul(const json_t *v) {
    if (json_is_string(v)) return strlen(json_string_value(v)) != json_string_length(v);
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) if (push_json_has_nul(e)) return true;
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e) if (push_json_has_nul(e)) return true;
    }
    return false;
}
