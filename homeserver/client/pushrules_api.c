/* pushrules_api.c — /pushrules: reading a user's rule set, adding, moving,
 * replacing and deleting their rules, enabling and re-acting any rule.
 *
 * Every change bumps the user's row in push_rules_stream to a new position
 * of the account data stream (that row lock also orders one user's
 * concurrent changes) and wakes their /sync, which then carries m.push_rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/db/streams.h"
#include "notifier.h"
#include "push_rules.h"
#include "push_store.h"

/* ---- reading ---- */

static json_t *load_ruleset(hs_req *r, hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return NULL;
    json_t *rules, *changes;
    int rc = push_store_load(c, r->user_id, &rules, &changes, err);
    db_release(r->srv->db, c);
    if (rc < 0) return NULL;
    json_t *set = push_rules_ruleset(r->user_id, rules, changes);
    json_decref(rules);
    json_decref(changes);
    return set;
}

static int check_scope(const char *scope, hs_err *err) {
    if (strcmp(scope, "global") != 0)
        return hs_err_set(err, 400, "M_UNRECOGNIZED", "the only push rule scope is 'global'");
    return 0;
}

static int parse_kind(const char *kind, hs_err *err) {
    int k = push_kind_parse(kind);
    if (k < 0)
        hs_err_set(err, 400, "M_UNRECOGNIZED",
                   "unknown push rule kind '%.64s' (override, content, room, sender, underride)",
                   kind);
    return k;
}

/* The rule (kind, rule_id) in a rule set, borrowed, or NULL with 404. */
static json_t *find_rule(json_t *set, int kind, const char *rule_id, hs_err *err) {
    size_t i;
    json_t *rule;
    json_array_foreach(json_object_get(set, push_kind_name(kind)), i, rule) {
        if (!strcmp(json_string_value(json_object_get(rule, "rule_id")), rule_id)) return rule;
    }
    hs_err_set(err, 404, "M_NOT_FOUND", "The push rule was not found.");
    return NULL;
}

/* GET /pushrules/, /pushrules/global/, /pushrules/global/{kind}/ and
 * /pushrules/global/{kind}/{ruleId}: params are as many of scope, kind and
 * rule ID as the path has; an empty last one means the level above it. */
static int get_rules(hs_req *r, json_t **out, hs_err *err) {
    const char *scope = r->n_params > 0 ? r->params[0] : "";
    const char *kind = r->n_params > 1 ? r->params[1] : "";
    const char *rule_id = r->n_params > 2 ? r->params[2] : "";
    /* The listings are /pushrules/, /pushrules/global/ and
     * /pushrules/global/{kind}/, with the slash (the spec's paths, which
     * every client uses); without it, as Synapse answers: /pushrules is no
     * endpoint, and a scope or kind with no slash is an incomplete rule path. */
    size_t len = strlen(r->path);
    if (!*rule_id && len && r->path[len - 1] != '/') {
        if (!*scope) return hs_err_set(err, 404, "M_UNRECOGNIZED", "Unrecognized request");
        return hs_err_set(err, 400, "M_UNRECOGNIZED", "a push rule listing ends with '/'");
    }
    if (*scope && check_scope(scope, err) < 0) return -1;
    int k = *kind ? parse_kind(kind, err) : 0;
    if (k < 0) return -1;
    json_t *set = load_ruleset(r, err);
    if (!set) return -1;
    if (!*scope) {
        *out = json_pack("{s:o}", "global", set);
    } else if (!*kind) {
        *out = set;
    } else if (!*rule_id) {
        *out = json_incref(json_object_get(set, push_kind_name(k)));
        json_decref(set);
    } else {
        json_t *rule = find_rule(set, k, rule_id, err);
        *out = json_incref(rule);
        json_decref(set);
        if (!rule) return -1;
    }
    return 200;
}

static int get_rule_attr(hs_req *r, json_t **out, hs_err *err) {
    const char *attr = r->params[3];
    if (check_scope(r->params[0], err) < 0) return -1;
    int k = parse_kind(r->params[1], err);
    if (k < 0) return -1;
    if (strcmp(attr, "enabled") != 0 && strcmp(attr, "actions") != 0)
        return hs_err_set(err, 400, "M_UNRECOGNIZED", "push rules have no attribute '%.64s'", attr);
    json_t *set = load_ruleset(r, err);
    if (!set) return -1;
    json_t *rule = find_rule(set, k, r->params[2], err);
    if (rule) *out = json_pack("{s:O}", attr, json_object_get(rule, attr));
    json_decref(set);
    return rule ? 200 : -1;
}

/* ---- writing ---- */

typedef struct write_job write_job;
typedef int (*write_fn)(db_conn *c, write_job *j, hs_err *err);

struct write_job {
    const char *user_id;
    const char *kind;      /* "override" … */
    const char *rule_id;
    long long pos;
    write_fn fn;
    /* PUT rule */
    const char *before, *after;
    char *conditions, *actions, *pattern; /* JSON text (conditions, actions) or NULL */
    /* PUT enabled */
    int enabled;           /* -1: not changing it */
};

static int bump_stream(db_conn *c, write_job *j, hs_err *err) {
    return push_store_bump(c, j->user_id, j->pos, err);
}

static int write_txn(db_conn *c, void *arg, hs_err *err) {
    write_job *j = arg;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_ACCOUNT_DATA, err)) < 0) return -1;
    if (bump_stream(c, j, err) < 0) return -1;
    return j->fn(c, j, err);
}

static int run_write(hs_req *r, write_job *j, hs_err *err) {
    j->user_id = r->user_id;
    int rc = db_txn(r->srv->db, write_txn, j, err);
    if (j->pos > 0) db_stream_done(DB_STREAM_ACCOUNT_DATA, j->pos);
    if (rc < 0) return -1;
    hs_notify_users((const char *const[]){r->user_id}, 1);
    return 0;
}

/* The priority of a user rule, or -1 with *found = false. */
static long long rule_priority(db_conn *c, write_job *j, const char *rule_id, bool *found,
                               bool *enabled, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT priority, enabled FROM push_rules"
                               " WHERE user_id = $1 AND kind = $2 AND rule_id = $3");
    PGresult *r = db_run(c, &q, 3, (const char *[]){j->user_id, j->kind, rule_id}, err);
    if (!r) return -2;
    *found = PQntuples(r) == 1;
    long long p = *found ? atoll(PQgetvalue(r, 0, 0)) : -1;
    if (*found && enabled) *enabled = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return p;
}

/* Make room at `at` and above: the new rule takes `at`. */
static int shift_from(db_conn *c, write_job *j, long long at, hs_err *err) {
    static db_stmt q = DB_STMT("UPDATE push_rules SET priority = priority + 1"
                               " WHERE user_id = $1 AND kind = $2 AND priority >= $3::bigint");
    char s[24];
    snprintf(s, sizeof s, "%lld", at);
    return db_exec(c, &q, 3, (const char *[]){j->user_id, j->kind, s}, err) < 0 ? -1 : 0;
}

static int insert_rule(db_conn *c, write_job *j, long long prio, bool enabled, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO push_rules (user_id, kind, rule_id, priority, conditions, pattern, actions,"
        " enabled) VALUES ($1, $2, $3, $4::bigint, $5::jsonb, $6, $7::jsonb, $8)");
    static db_stmt top = DB_STMT("SELECT coalesce(max(priority), 0) + 1 FROM push_rules"
                                 " WHERE user_id = $1 AND kind = $2");
    char s[24];
    if (prio < 0) {
        PGresult *r = db_run(c, &top, 2, (const char *[]){j->user_id, j->kind}, err);
        if (!r) return -1;
        prio = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    snprintf(s, sizeof s, "%lld", prio);
    const char *p[] = {j->user_id, j->kind, j->rule_id, s, j->conditions, j->pattern, j->actions,
                       enabled ? "t" : "f"};
    return db_exec(c, &ins, 8, p, err) < 0 ? -1 : 0;
}

static int put_rule_txn(db_conn *c, write_job *j, hs_err *err) {
    static db_stmt upd = DB_STMT("UPDATE push_rules SET conditions = $4::jsonb, pattern = $5,"
                                 " actions = $6::jsonb WHERE user_id = $1 AND kind = $2"
                                 " AND rule_id = $3");
    static db_stmt del = DB_STMT("DELETE FROM push_rules WHERE user_id = $1 AND kind = $2"
                                 " AND rule_id = $3");
    bool exists, enabled = true, rel_found = false;
    if (rule_priority(c, j, j->rule_id, &exists, &enabled, err) < -1) return -1;
    const char *rel = j->before ? j->before : j->after;
    if (!rel) {
        if (!exists) return insert_rule(c, j, -1, true, err);
        const char *p[] = {j->user_id, j->kind, j->rule_id, j->conditions, j->pattern, j->actions};
        return db_exec(c, &upd, 6, p, err) < 0 ? -1 : 0;
    }
    long long relp = -1;
    if (strcmp(rel, j->rule_id) != 0) {
        relp = rule_priority(c, j, rel, &rel_found, NULL, err);
        if (relp < -1) return -1;
    }
    if (!rel_found)
        return hs_err_set(err, 400, "M_UNKNOWN", "before/after rule not found: %.200s", rel);
    /* Moving: take the rule out, then put it in its new place. */
    if (exists && db_exec(c, &del, 3, (const char *[]){j->user_id, j->kind, j->rule_id}, err) < 0)
        return -1;
    long long at = j->before ? relp + 1 : relp;
    if (shift_from(c, j, at, err) < 0) return -1;
    return insert_rule(c, j, at, enabled, err);
}

/* Validate a PUT body into j's JSON texts. */
static int read_rule_body(hs_req *r, push_kind k, write_job *j, hs_err *err) {
    const json_t *body = r->json;
    if (push_json_has_nul(body))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "strings in push rules may not hold U+0000");
    const json_t *actions = json_object_get(body, "actions");
    if (!actions) return hs_err_set(err, 400, "M_MISSING_PARAM", "'actions' is required");
    json_t *clean = push_actions_clean(actions, err);
    if (!clean) return -1;
    j->actions = json_dumps(clean, JSON_COMPACT);
    json_decref(clean);
    if (k == PUSH_OVERRIDE || k == PUSH_UNDERRIDE) {
        const json_t *conds = json_object_get(body, "conditions");
        if (conds && !json_is_array(conds))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'conditions' must be an array");
        size_t i;
        const json_t *cond;
        json_array_foreach(conds, i, cond) {
            if (!json_is_string(json_object_get(cond, "kind")))
                return hs_err_set(err, 400, "M_INVALID_PARAM",
                                  "condition %zu must be an object with a string 'kind'", i);
        }
        /* Absent conditions: a rule that always matches, as the spec defines. */
        j->conditions = conds ? json_dumps(conds, JSON_COMPACT) : strdup("[]");
    } else if (k == PUSH_CONTENT) {
        const json_t *pat = json_object_get(body, "pattern");
        if (!pat) return hs_err_set(err, 400, "M_MISSING_PARAM", "content rules need a 'pattern'");
        if (!json_is_string(pat))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'pattern' must be a string");
        j->pattern = strdup(json_string_value(pat));
    }
    return 0;
}

static int check_new_rule_id(const char *rule_id, hs_err *err) {
    if (rule_id[0] == '.')
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "rule IDs starting with '.' are reserved for server-default rules");
    if (strchr(rule_id, '/') || strchr(rule_id, '\\'))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "rule IDs may not contain '/' or '\\'");
    return 0;
}

/* PUT /pushrules/, /pushrules/global, /pushrules/global/{kind}[/]: no rule
 * named (Synapse: 400, as for a rule path it cannot read). */
static int put_incomplete(hs_req *r, json_t **out, hs_err *err) {
    (void)r, (void)out;
    return hs_err_set(err, 400, "M_UNRECOGNIZED", "a push rule path is "
                      "/pushrules/{scope}/{kind}/{ruleId}");
}

static int put_rule(hs_req *r, json_t **out, hs_err *err) {
    if (!*r->params[2]) return put_incomplete(r, out, err);
    if (check_scope(r->params[0], err) < 0) return -1;
    int k = parse_kind(r->params[1], err);
    if (k < 0 || check_new_rule_id(r->params[2], err) < 0) return -1;
    write_job j = {.kind = push_kind_name(k), .rule_id = r->params[2], .fn = put_rule_txn,
                   .before = hs_req_query(r, "before"), .after = hs_req_query(r, "after")};
    if (j.before && !*j.before) j.before = NULL;
    if (j.after && !*j.after) j.after = NULL;
    int rc = read_rule_body(r, k, &j, err);
    if (rc == 0) rc = run_write(r, &j, err);
    free(j.actions);
    free(j.conditions);
    free(j.pattern);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

static int delete_rule_txn(db_conn *c, write_job *j, hs_err *err) {
    static db_stmt del = DB_STMT("DELETE FROM push_rules WHERE user_id = $1 AND kind = $2"
                                 " AND rule_id = $3");
    long n = db_exec(c, &del, 3, (const char *[]){j->user_id, j->kind, j->rule_id}, err);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 404, "M_NOT_FOUND", "The push rule was not found.");
    return 0;
}

static int delete_rule(hs_req *r, json_t **out, hs_err *err) {
    if (check_scope(r->params[0], err) < 0) return -1;
    int k = parse_kind(r->params[1], err);
    if (k < 0) return -1;
    /* As in Synapse, a server-default rule is not a stored one: 404. */
    if (push_rule_is_default(k, r->params[2]))
        return hs_err_set(err, 404, "M_NOT_FOUND", "server-default rules cannot be deleted");
    write_job j = {.kind = push_kind_name(k), .rule_id = r->params[2], .fn = delete_rule_txn};
    if (run_write(r, &j, err) < 0) return -1;
    *out = json_object();
    return 200;
}

/* enabled / actions of a user rule, or of a default rule as the user's change. */
static int set_attr_txn(db_conn *c, write_job *j, hs_err *err) {
    static db_stmt user_en = DB_STMT("UPDATE push_rules SET enabled = $4 WHERE user_id = $1"
                                     " AND kind = $2 AND rule_id = $3");
    static db_stmt user_act = DB_STMT("UPDATE push_rules SET actions = $4::jsonb WHERE user_id = $1"
                                      " AND kind = $2 AND rule_id = $3");
    static db_stmt def_en = DB_STMT(
        "INSERT INTO push_rule_default_changes (user_id, kind, rule_id, enabled)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, kind, rule_id)"
        " DO UPDATE SET enabled = EXCLUDED.enabled");
    static db_stmt def_act = DB_STMT(
        "INSERT INTO push_rule_default_changes (user_id, kind, rule_id, actions)"
        " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (user_id, kind, rule_id)"
        " DO UPDATE SET actions = EXCLUDED.actions");
    bool is_default = push_rule_is_default(push_kind_parse(j->kind), j->rule_id);
    db_stmt *st = j->enabled >= 0 ? (is_default ? &def_en : &user_en)
                                  : (is_default ? &def_act : &user_act);
    const char *val = j->enabled >= 0 ? (j->enabled ? "t" : "f") : j->actions;
    long n = db_exec(c, st, 4, (const char *[]){j->user_id, j->kind, j->rule_id, val}, err);
    if (n < 0) return -1;
    if (n == 0) return hs_err_set(err, 404, "M_NOT_FOUND", "The push rule was not found.");
    return 0;
}

static int put_rule_attr(hs_req *r, json_t **out, hs_err *err) {
    const char *attr = r->params[3];
    if (check_scope(r->params[0], err) < 0) return -1;
    int k = parse_kind(r->params[1], err);
    if (k < 0) return -1;
    write_job j = {.kind = push_kind_name(k), .rule_id = r->params[2], .fn = set_attr_txn,
                   .enabled = -1};
    if (!strcmp(attr, "enabled")) {
        const json_t *en = json_object_get(r->json, "enabled");
        if (!en) return hs_err_set(err, 400, "M_MISSING_PARAM", "'enabled' is required");
        if (!json_is_boolean(en))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'enabled' must be a boolean");
        j.enabled = json_is_true(en);
    } else if (!strcmp(attr, "actions")) {
        const json_t *act = json_object_get(r->json, "actions");
        if (!act) return hs_err_set(err, 400, "M_MISSING_PARAM", "'actions' is required");
        if (push_json_has_nul(act))
            return hs_err_set(err, 400, "M_INVALID_PARAM", "strings in actions may not hold U+0000");
        json_t *clean = push_actions_clean(act, err);
        if (!clean) return -1;
        j.actions = json_dumps(clean, JSON_COMPACT);
        json_decref(clean);
    } else {
        return hs_err_set(err, 400, "M_UNRECOGNIZED", "push rules have no attribute '%.64s'", attr);
    }
    /* A rule ID with a dot that no default has is simply not there. */
    int rc = (r->params[2][0] == '.' && !push_rule_is_default(k, r->params[2]))
                 ? hs_err_set(err, 404, "M_NOT_FOUND", "The push rule was not found.")
                 : run_write(r, &j, err);
    free(j.actions);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

void client_pushrules_routes(hs_router *rt) {
    const int f = HS_AUTH | HS_R0;
    /* Element and matrix-js-sdk ask for /pushrules/ (trailing slash) and
     * /pushrules/global/; get_rules answers the forms without it. */
    hs_route(rt, "GET", "/_matrix/client/v3/pushrules/{scope?}", get_rules, f);
    hs_route(rt, "GET", "/_matrix/client/v3/pushrules/{scope}/{kind?}", get_rules, f);
    hs_route(rt, "GET", "/_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId?}", get_rules, f);
    hs_route(rt, "PUT", "/_matrix/client/v3/pushrules/{scope?}", put_incomplete, f);
    hs_route(rt, "PUT", "/_matrix/client/v3/pushrules/{scope}/{kind?}", put_incomplete, f);
    hs_route(rt, "PUT", "/_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId?}", put_rule, f);
    hs_route(rt, "DELETE", "/_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}", delete_rule, f);
    hs_route(rt, "GET", "/_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/{attr}",
             get_rule_attr, f);
    hs_route(rt, "PUT", "/_matrix/client/v3/pushrules/{scope}/{kind}/{ruleId}/{attr}",
             put_rule_attr, f);
}
