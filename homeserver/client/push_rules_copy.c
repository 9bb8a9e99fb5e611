/* push_rules_copy.c — push rules following a room upgrade (push_rules_copy.h). */
#include "push_rules_copy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/db/streams.h"
#include "notifier.h"
#include "push_store.h"

typedef struct copy_job {
    const char *user_id, *old_room, *new_room, *server;
    long long pos;
    char **users; /* whose rules were copied (malloc'd IDs) */
    size_t n_users;
} copy_job;

/* One statement: the copies, at the top of their kind as a new rule goes,
 * with the room_id conditions pointed at the new room; the users they went
 * to come back. A second override or underride rule on the old room would
 * take the same rule ID: the first is kept (Synapse names them alike too). */
static db_stmt copy_q = DB_STMT(
    "WITH src AS ("
    "  SELECT p.* FROM push_rules p WHERE p.enabled"
    "   AND ($1::text IS NULL AND p.user_id IN (SELECT cs.state_key FROM current_state cs"
    "     WHERE cs.room_id = $2 AND cs.type = 'm.room.member' AND cs.membership = 'join'"
    "     AND right(cs.state_key, length($4) + 1) = ':' || $4) OR p.user_id = $1)"
    "   AND ((p.kind = 'room' AND p.rule_id = $2) OR (p.kind IN ('override', 'underride')"
    "    AND EXISTS (SELECT 1 FROM jsonb_array_elements(p.conditions) c"
    "     WHERE c->>'key' = 'room_id' AND c->>'pattern' = $2))))"
    " INSERT INTO push_rules (user_id, kind, rule_id, priority, conditions, pattern, actions,"
    "  enabled)"
    " SELECT s.user_id, s.kind, $3, (SELECT coalesce(max(q.priority), 0) + 1 FROM push_rules q"
    "   WHERE q.user_id = s.user_id AND q.kind = s.kind),"
    "  CASE WHEN s.conditions IS NULL THEN NULL ELSE coalesce((SELECT jsonb_agg("
    "   CASE WHEN c->>'key' = 'room_id' AND c->>'pattern' = $2"
    "   THEN jsonb_set(c, '{pattern}', to_jsonb($3::text)) ELSE c END ORDER BY o)"
    "   FROM jsonb_array_elements(s.conditions) WITH ORDINALITY AS x(c, o)), '[]') END,"
    "  s.pattern, s.actions, true FROM src s"
    " ON CONFLICT DO NOTHING RETURNING user_id");

static int bump(db_conn *c, copy_job *j, hs_err *err) {
    for (size_t i = 0; i < j->n_users; i++)
        if (push_store_bump(c, j->users[i], j->pos, err) < 0) return -1;
    return 0;
}

static void forget_users(copy_job *j) {
    for (size_t i = 0; i < j->n_users; i++) free(j->users[i]);
    free(j->users);
    j->users = NULL;
    j->n_users = 0;
}

static int copy_txn(db_conn *c, void *arg, hs_err *err) {
    copy_job *j = arg;
    forget_users(j);
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_ACCOUNT_DATA, err)) < 0) return -1;
    PGresult *r = db_run(c, &copy_q, 4,
                         (const char *[]){j->user_id, j->old_room, j->new_room, j->server}, err);
    if (!r) return -1;
    j->users = calloc((size_t)PQntuples(r) + 1, sizeof *j->users);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *u = PQgetvalue(r, i, 0);
        bool seen = false;
        for (size_t k = 0; k < j->n_users && !seen; k++) seen = !strcmp(j->users[k], u);
        if (!seen) j->users[j->n_users++] = strdup(u);
    }
    PQclear(r);
    return bump(c, j, err);
}

int client_push_rules_copy_room(hs_server *srv, const char *user_id, const char *old_room,
                                const char *new_room, hs_err *err) {
    copy_job j = {.user_id = user_id, .old_room = old_room, .new_room = new_room,
                  .server = srv->cfg->server_name};
    int rc = db_txn(srv->db, copy_txn, &j, err);
    if (j.pos > 0) db_stream_done(DB_STREAM_ACCOUNT_DATA, j.pos);
    if (rc == 0 && j.n_users)
        hs_notify_users((const char *const *)j.users, j.n_users);
    forget_users(&j);
    return rc;
}
