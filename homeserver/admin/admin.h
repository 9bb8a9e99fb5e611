/* admin.h — the `pvyhs` subcommands. Each returns the process exit code:
 * 0 success, 1 runtime failure, 2 bad usage or config. */
#ifndef ADMIN_ADMIN_H
#define ADMIN_ADMIN_H

#include <stdbool.h>

#include "config/config.h"
#include "homeserver/db/db.h"
#include "homeserver/db/embedded_pg.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int admin_serve(int argc, char **argv);
int admin_init(int argc, char **argv);
int admin_config(int argc, char **argv);
int admin_user(int argc, char **argv);
int admin_registration_token(int argc, char **argv);
int admin_media(int argc, char **argv);
int admin_channel(int argc, char **argv);
int admin_report(int argc, char **argv);
int admin_server_notice(int argc, char **argv);

/* What every command that touches the database opens: the config, the data
 * directory's lock, the database (embedded or external) and its schema. */
typedef struct admin_runtime {
    cfg *cfg;
    int lock_fd;          /* flock on <data_dir>/pvyhs.lock, -1 if not held */
    db_embedded *pg;      /* NULL with an external database */
    db_pool *db;
} admin_runtime;

/* Load config_path; print problems to stderr. NULL → exit 2. */
cfg *admin_load_config(const char *config_path);

/* Open the runtime. `serve` insists on the data directory's lock (a second
 * serve is refused); other commands attach to a running serve's database.
 * Returns an exit code (0 on success). */
int admin_runtime_open(admin_runtime *rt, cfg *c, bool serve);
void admin_runtime_close(admin_runtime *rt);

/* Print usage text for a command and return code. */
int admin_usage(const char *text, int code);

#endif
