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

#define ROOM_USERS                                                                        \
    "(SELECT state_key FROM current_state WHERE room_id = $1 AND type = 'm.room.member'" \
    " AND membership = 'join' UNION SELECT $2)"

static json_t *sub(json_t *by_user, const char *user_id) {
    json_t *o = json_object_get(by_user, user_id);
    if (!o) json_object_set_new(by_user, user_id, o = json_object());
    return o;
}

static db_stmt room_rules = DB_STMT("SELECT p.user_id, " RULE_COLS " FROM push_rules p"
                                    " WHERE p.user_id IN " ROOM_USERS
                                    " ORDER BY p.user_id, p.kind, p.priority DESC");
static db_stmt room_changes = DB_STMT("SELECT d.user_id, " CHANGE_COLS
                                      " FROM push_rule_default_changes d WHERE d.user_id IN "
                                      ROOM_USERS);

void push_store_prefetch_room(db_conn *c, const char *room_id, const char *extra) {
    const char *p[] = {room_id, extra};
    hs_err ignored = {0};
    if (db_prefetch(c, &room_rules, 2, p, 0, &ignored) == 0)
        db_prefetch(c, &room_changes, 2, p, 0, &ignored);
}

int push_store_load_room(db_conn *c, const char *room_id, const char *extra, json_t **rules_by_user,
                         json_t **changes_by_user, hs_err *err) {
    db_stmt *qr = &room_rules, *qd = &room_changes;
    const char *p[] = {room_id, extra};
    *rules_by_user = *changes_by_user = NULL;
    push_store_prefetch_room(c, room_id, extra); /* both in one round trip */
    PGresult *r = db_run(c, qr, 2, p, err);
    if (!r) return -1;
    *rules_by_user = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        add_rule(sub(*rules_by_user, PQgetvalue(r, i, 0)), r, i, 1);
    PQclear(r);
    if (!(r = db_run(c, qd, 2, p, err))) {
        json_decref(*rules_by_user);
        *rules_by_user = NULL;
        return -1;
    }
    *changes_by_user = json_object();
    for (int i = 0; i < PQntuples(r); i++)
        add_change(sub(*changes_by_user, PQgetvalue(r, i, 0)), r, i, 1);
    PQclear(r);
    return 0;
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
