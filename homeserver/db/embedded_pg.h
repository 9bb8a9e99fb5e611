/* embedded_pg.h — the private PostgreSQL cluster pvyhs runs when the config
 * has no `database` section.
 *
 * The cluster lives in <data_dir>/pg, listens on a unix socket only (no TCP),
 * and runs as an unprivileged user when pvyhs is started as root (PostgreSQL
 * refuses root): the system user "pvyhs", created if missing. */
#ifndef DB_EMBEDDED_PG_H
#define DB_EMBEDDED_PG_H

#include <stdbool.h>

#include "homeserver/core/err.h"

typedef struct db_embedded db_embedded;

/* Bring the cluster up: initdb on first use, start postgres (or adopt one
 * already running on our socket, e.g. left by a crash or run by `serve` while
 * a CLI command attaches), wait until it accepts connections, and make sure
 * the "pvyhs" database exists. `own` says whether db_embedded_stop should
 * shut it down (the caller holds the data directory's lock). */
db_embedded *db_embedded_start(const char *data_dir, bool own, hs_err *err);

/* libpq conninfo for the pvyhs database on the cluster's socket. */
const char *db_embedded_conninfo(const db_embedded *e);

/* Whether initdb ran during this start (a first start). */
bool db_embedded_was_created(const db_embedded *e);

/* Stop the cluster if we own it (fast shutdown), then free e. */
void db_embedded_stop(db_embedded *e);

#endif
