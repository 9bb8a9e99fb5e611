/* push_store.c — loading push rules from PostgreSQL into the JSON shapes the
 * evaluator takes, for one user (the API) or a room's members (each event). */
#include "push_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "push_rules.h"

#define RULE_COLS "p.kind, p.rule_id, p.conditions::text, p.pattern, p.actions::text, p.enabled"
#define CHANGE_COLS "d.kind, d.rule_id, d.enabled, d.actions::text"

static json_t *parse_col(PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) return NULL;
    return json_loads(PQgetvalue(r, row, col), 0, NULL);
}

static bool col_true(PGresult *r, int row, int col) { return PQgetvalue(r, row, col)[0] == 't'; }

/* Columns from col: kind, rule_id, conditions, pattern, actions, enabled. */
static void add_rule(json_t *rules, PGresult *r, int row, int col) {
    const char *kind = PQgetvalue(r, row, col);
    json_t *list = json_object_get(rules, kind);
    if (!list) json_object_set_new(rules, kind, list = json_array());
    json_t *actions = parse_col(r, row, col + 4);
    json_t *rule = json_pack("{s:s, s:o, s:b}", "rule_id", PQgetvalue(r, row, col + 1), "actions",
                             actions ? actions : json_array(), "enabled", col_true(r, row, col + 5));
    json_t *conds = parse_col(r, row, col + 2);
    if (conds) json_object_set_new(rule, "conditions", conds);
    if (!PQgetisnull(r, row, col + 3))
        json_object_set_new(rule, "pattern", json_string(PQgetvalue(r, row, col + 3)));
    json_array_append_new(list, rule);
}

/* Columns from col: kind, rule_id, enabled, actions. */
static void add_change(json_t *changes, PGresult *r, int row, int col) {
    const char *kind = PQgetvalue(r, row, col);
    json_t *by_id = json_object_get(changes, kind);
    if (!by_id) json_object_set_new(changes, kind, by_id = json_object());
    json_t *ch = json_object();
    if (!PQgetisnull(r, row, col + 2))
        json_object_set_new(ch, "enabled", json_boolean(col_true(r, row, col + 2)));
    json_t *actions = parse_col(r, row, col + 3);
    if (actions) json_object_set_new(ch, "actions", actions);
    json_object_set_new(by_id, PQgetvalue(r, row, col + 1), ch);
}

int push_store_load(db_conn *c, const char *user_id, json_t **user_rules, json_t **changes,
                    hs_err *err) {
    static db_stmt qr = DB_STMT("SELECT " RULE_COLS " FROM push_rules p WHERE p.user_id = $1"
                                " ORDER BY p.kind, p.priority DESC");
    static db_stmt qd = DB_STMT("SELECT " CHANGE_COLS " FROM push_rule_default_changes d"
                                " WHERE d.user_id = $1");
    *user_rules = *changes = NULL;
    PGresult *r = db_run(c, &qr, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    *user_rules = json_object();
    for (int i = 0; i < PQntuples(r); i++) add_rule(*user_rules, r, i, 0);
    PQclear(r);
    if (!(r = db_run(c, &qd, 1, (const char *[]){user_id}, err))) {
        json_decref(*user_rules);
        *user_rules = NULL;
        return -1;
    }
    *changes = json_object();
    for (int i = 0; i < PQntuples(r); i++) add_change(*changes, r, i, 0);
    PQclear(r);
    return 0;
}

/* One rule or change as PUSH_STORE_RULES_OF / PUSH_STORE_CHANGES_OF give it
 * (a JSON array of the columns), added as add_rule / add_change would. */
static void add_rule_json(json_t *rules, json_t *row) {
    const char *kind = json_string_value(json_array_get(row, 0));
    const char *rule_id = json_string_value(json_array_get(row, 1));
    if (!kind || !rule_id) return;
    json_t *list = json_object_get(rules, kind);
    if (!list) json_object_set_new(rules, kind, list = json_array());
    json_t *actions = json_array_get(row, 4);
    json_t *rule = json_pack("{s:s, s:o, s:b}", "rule_id", rule_id, "actions",
                             json_is_array(actions) ? json_incref(actions) : json_array(),
                             "enabled", json_is_true(json_array_get(row, 5)));
    json_t *conds = json_array_get(row, 2);
    if (conds && !json_is_null(conds)) json_object_set(rule, "conditions", conds);
    json_t *pattern = json_array_get(row, 3);
    if (json_is_string(pattern)) json_object_set(rule, "pattern", pattern);
    json_array_append_new(list, rule);
}

static void add_change_json(json_t *changes, json_t *row) {
    const char *kind = json_string_value(json_array_get(row, 0));
    const char *rule_id = json_string_value(json_array_get(row, 1));
    if (!kind || !rule_id) return;
    json_t *by_id = json_object_get(changes, kind);
    if (!by_id) json_object_set_new(changes, kind, by_id = json_object());
    json_t *ch = json_object();
    json_t *enabled = json_array_get(row, 2);
    if (json_is_boolean(enabled)) json_object_set(ch, "enabled", enabled);
    json_t *actions = json_array_get(row, 3);
    if (actions && !json_is_null(actions)) json_object_set(ch, "actions", actions);
    json_object_set_new(by_id, rule_id, ch);
}

static json_t *from_json(const char *text, void (*add)(json_t *, json_t *)) {
    json_t *out = json_object();
    json_t *rows = text && *text ? json_loads(text, 0, NULL) : NULL;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) add(out, row);
    json_decref(rows);
    return out;
}

json_t *push_store_rules_from_json(const char *text) { return from_json(text, add_rule_json); }

json_t *push_store_changes_from_json(const char *text) { return from_json(text, add_change_json); }

int push_store_bump(db_conn *c, const char *user_id, long long pos, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO push_rules_stream (user_id, stream_id) VALUES ($1, $2::bigint)"
        " ON CONFLICT (user_id) DO UPDATE SET stream_id = EXCLUDED.stream_id");
    char p[24];
    snprintf(p, sizeof p, "%lld", pos);
    return db_exec(c, &up, 2, (const char *[]){user_id, p}, err) < 0 ? -1 : 0;
}

int client_push_rules_account_data(db_conn *c, const char *user_id, long long from, long long to,
                                   json_t **event, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM push_rules_stream WHERE user_id = $1"
                               " AND stream_id > $2::bigint AND stream_id <= $3::bigint");
    *event = NULL;
    if (from > 0) {
        char f[24], t[24];
        snprintf(f, sizeof f, "%lld", from);
        snprintf(t, sizeof t, "%lld", to);
        PGresult *r = db_run(c, &q, 3, (const char *[]){user_id, f, t}, err);
        if (!r) return -1;
        bool changed = PQntuples(r) > 0;
        PQclear(r);
        if (!changed) return 0;
    }
    json_t *rules, *changes;
    if (push_store_load(c, user_id, &rules, &changes, err) < 0) return -1;
    json_t *set = push_rules_ruleset(user_id, rules, changes);
    json_decref(rules);
    json_decref(changes);
    *event = json_pack("{s:s, s:{s:o}}", "type", "m.push_rules", "content", "global", set);
    return 0;
}
