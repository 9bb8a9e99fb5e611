/* migrate.c — bringing the schema up to what this binary knows.
 *
 * Each sql/NNN_name.sql runs in its own transaction together with the row
 * that records it, so a crash leaves the schema at a whole migration. An
 * advisory lock serialises several pvyhs processes starting at once. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "homeserver/core/log.h"
#include "migrations.h"

#define MIGRATE_LOCK_KEY "7170796873" /* arbitrary, constant across versions */

int db_schema_version_known(void) {
    int v = 0;
    for (const db_migration *m = db_migrations; m->name; m++) v = m->version;
    return v;
}

static int current_version(db_conn *c, int *out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT coalesce(max(version), 0) FROM schema_version");
    PGresult *r = db_run(c, &q, 0, NULL, err);
    if (!r) return -1;
    *out = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Whether migration v was applied: numbers may land out of order, so every
 * missing one is applied, not only those above the highest. */
static int applied(db_conn *c, int v, bool *out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT 1 FROM schema_version WHERE version = $1");
    char vs[16];
    snprintf(vs, sizeof vs, "%d", v);
    PGresult *r = db_run(c, &q, 1, (const char *[]){vs}, err);
    if (!r) return -1;
    *out = PQntuples(r) > 0;
    PQclear(r);
    return 0;
}

static int apply(db_conn *c, const db_migration *m, hs_err *err) {
    static db_stmt rec = DB_STMT("INSERT INTO schema_version (version, name) VALUES ($1, $2)");
    char v[16];
    snprintf(v, sizeof v, "%d", m->version);
    if (db_script(c, "BEGIN", err) < 0) return -1;
    if (db_script(c, m->sql, err) < 0 || db_exec(c, &rec, 2, (const char *[]){v, m->name}, err) < 0 ||
        db_script(c, "COMMIT", err) < 0) {
        db_script(c, "ROLLBACK", NULL);
        return -1;
    }
    hs_info("applied migration %s", m->name);
    return 0;
}

static int migrate_locked(db_conn *c, hs_err *err) {
    if (db_script(c,
                  "CREATE TABLE IF NOT EXISTS schema_version ("
                  " version integer PRIMARY KEY, name text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  err) < 0)
        return -1;
    int have;
    if (current_version(c, &have, err) < 0) return -1;
    int known = db_schema_version_known();
    if (have > known)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "the database schema is at version %d but this pvyhs knows only up to "
                          "%d: run a newer pvyhs (downgrades are not supported)",
                          have, known);
    for (const db_migration *m = db_migrations; m->name; m++) {
        bool done;
        if (applied(c, m->version, &done, err) < 0) return -1;
        if (done) continue;
        if (apply(c, m, err) < 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return hs_err_set(err, 500, "M_UNKNOWN", "migration %s failed: %s", m->name, why);
        }
    }
    return 0;
}

int db_migrate(db_pool *p, hs_err *err) {
    db_conn *c = db_acquire(p, err);
    if (!c) return -1;
    int rc = db_script(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", err);
    if (rc == 0) {
        rc = migrate_locked(c, err);
        db_script(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", NULL);
    }
    db_release(p, c);
    return rc;
}
