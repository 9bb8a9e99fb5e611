/* runtime.c — config, data-directory lock, database and schema: what each
 * command opens before it does its work. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "rooms/room_version.h"
#include "homeserver/db/streams.h"
#include "homeserver/core/log.h"

int admin_usage(const char *text, int code) {
    fputs(text, code == 0 ? stdout : stderr);
    return code;
}

cfg *admin_load_config(const char *path) {
    int errors = 0, warnings = 0;
    cfg *c = cfg_load(path, stderr, &errors, &warnings);
    if (!c) fprintf(stderr, "pvyhs: %s: %d error(s); nothing was started\n", path, errors);
    if (c && c->default_room_version) room_version_set_default(c->default_room_version);
    if (c && c->log_level) {
        int lvl = hs_log_level_parse(c->log_level);
        if (lvl >= 0) hs_log_set_level((enum hs_log_level)lvl);
    }
    return c;
}

/* mkdir -p; the last component is not listable by others. */
static int make_dirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    /* 0711: the embedded PostgreSQL's user must traverse it to reach pg/. */
    return mkdir(buf, 0711) < 0 && errno != EEXIST ? -1 : 0;
}

/* Take <data_dir>/pvyhs.lock. serve waits a little (a CLI command may hold
 * it for a moment) and then refuses; other commands never wait. */
static int take_lock(admin_runtime *rt, bool serve) {
    char path[4200];
    snprintf(path, sizeof path, "%s/pvyhs.lock", rt->cfg->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        hs_error("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < (serve ? 100 : 1); i++) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            rt->lock_fd = fd;
            return 1;
        }
        if (!serve) break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    close(fd);
    return 0;
}

int admin_runtime_open(admin_runtime *rt, cfg *c, bool serve) {
    memset(rt, 0, sizeof *rt);
    rt->cfg = c;
    rt->lock_fd = -1;
    if (make_dirs(c->data_dir) < 0 || access(c->data_dir, W_OK) < 0) {
        hs_error("the data directory %s is not writable: %s", c->data_dir, strerror(errno));
        return EXIT_RUNTIME;
    }
    int locked = take_lock(rt, serve);
    if (locked < 0) return EXIT_RUNTIME;
    if (serve && !locked) {
        hs_error("another pvyhs is already serving %s (its lock %s/pvyhs.lock is held)",
                 c->data_dir, c->data_dir);
        return EXIT_RUNTIME;
    }
    hs_err err = {0};
    const char *conninfo = c->db_dsn;
    if (c->db_embedded) {
        rt->pg = db_embedded_start(c->data_dir, locked == 1, &err);
        if (!rt->pg) {
            hs_error("%s", err.msg);
            admin_runtime_close(rt);
            return EXIT_RUNTIME;
        }
        conninfo = db_embedded_conninfo(rt->pg);
    }
    /* An external database may be restarting: wait for it a while. */
    rt->db = db_pool_new(conninfo, serve ? c->db_cp_min : 1, serve ? c->db_cp_max : 1,
                         c->db_embedded ? 0 : c->db_connect_retry_s, &err);
    if (!rt->db || db_migrate(rt->db, &err) < 0 || (serve && db_streams_init(rt->db, &err) < 0)) {
        hs_error("%s", err.msg);
        admin_runtime_close(rt);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

void admin_runtime_close(admin_runtime *rt) {
    db_pool_free(rt->db);
    rt->db = NULL;
    db_embedded_stop(rt->pg);
    rt->pg = NULL;
    if (rt->lock_fd >= 0) close(rt->lock_fd);
    rt->lock_fd = -1;
}
