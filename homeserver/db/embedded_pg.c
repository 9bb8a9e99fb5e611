/* embedded_pg.c — initdb, start, adopt and stop the private PostgreSQL cluster.
 *
 * Debian installs the server binaries under /usr/lib/postgresql/<major>/bin,
 * not on PATH; we take the newest major present. postgres is started in its
 * own session so a Ctrl-C on the terminal reaches only pvyhs, which then
 * finishes its requests before it stops the database. */
#include "embedded_pg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "homeserver/core/log.h"

#define PG_USER "pvyhs"
#define PG_DB "pvyhs"
#define START_TIMEOUT_S 60

struct db_embedded {
    char bindir[PATH_MAX];
    char pgdir[PATH_MAX];    /* <data_dir>/pg (or where its symlink points) */
    char datadir[PATH_MAX];  /* <pgdir>/data */
    char sockdir[PATH_MAX];
    char conninfo[PATH_MAX + 64];
    uid_t uid;               /* who postgres runs as */
    gid_t gid;
    bool drop;               /* we are root and must switch user for postgres */
    bool own, created;
    pid_t pid;               /* postmaster */
    bool child;              /* pid is our child (waitpid works) */
};

static int find_bindir(char *out, size_t outsz, hs_err *err) {
    /* PVYHS_PG_BINDIR points at PostgreSQL binaries installed elsewhere. */
    const char *env = getenv("PVYHS_PG_BINDIR");
    if (env && *env) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/postgres", env);
        if (access(p, X_OK) != 0)
            return hs_err_set(err, 500, "M_UNKNOWN",
                              "PostgreSQL server binaries not found in %s (PVYHS_PG_BINDIR)", env);
        snprintf(out, outsz, "%s", env);
        return 0;
    }
    DIR *d = opendir("/usr/lib/postgresql");
    int best = -1;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        int v = atoi(de->d_name);
        char p[PATH_MAX];
        snprintf(p, sizeof p, "/usr/lib/postgresql/%s/bin/postgres", de->d_name);
        if (v > best && access(p, X_OK) == 0) {
            snprintf(p, sizeof p, "/usr/lib/postgresql/%s/bin/initdb", de->d_name);
            if (access(p, X_OK) == 0) best = v;
        }
    }
    if (d) closedir(d);
    if (best < 0)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                          "install them (apt-get install postgresql) or configure an external "
                          "`database` in the config");
    snprintf(out, outsz, "/usr/lib/postgresql/%d/bin", best);
    return 0;
}

/* Switch to the cluster's user in a forked child (no-op when not root). */
static void become_pg_user(const db_embedded *e) {
    if (!e->drop) return;
    if (setgroups(0, NULL) < 0 || setgid(e->gid) < 0 || setuid(e->uid) < 0) _exit(126);
}

/* Run argv to completion as the cluster's user, output appended to log. */
static int run(const db_embedded *e, char *const argv[], const char *log) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        become_pg_user(e);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int ensure_system_user(db_embedded *e, hs_err *err) {
    struct passwd *pw = getpwnam(PG_USER);
    if (!pw) {
        hs_info("creating system user '%s' for the embedded PostgreSQL", PG_USER);
        char *argv[] = {"/usr/sbin/useradd", "--system", "--no-create-home", "--home-dir",
                        "/nonexistent", "--shell", "/usr/sbin/nologin", PG_USER, NULL};
        db_embedded plain = {0}; /* run useradd as ourselves (root) */
        if (run(&plain, argv, "/dev/null") != 0 || !(pw = getpwnam(PG_USER)))
            return hs_err_set(err, 500, "M_UNKNOWN", "cannot create system user '%s'", PG_USER);
    }
    e->uid = pw->pw_uid;
    e->gid = pw->pw_gid;
    e->drop = true;
    return 0;
}

/* Can the cluster's user reach and write dir? Checked in a child that has
 * switched user, because only the kernel knows the answer (ACLs, modes). */
static bool pg_user_can_use(const db_embedded *e, const char *dir) {
    pid_t pid = fork();
    if (pid == 0) {
        become_pg_user(e);
        _exit(access(dir, R_OK | W_OK | X_OK) == 0 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static int mkdir_owned(const db_embedded *e, const char *dir, hs_err *err) {
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot create %s: %s", dir, strerror(errno));
    if (e->drop && chown(dir, e->uid, e->gid) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot chown %s: %s", dir, strerror(errno));
    return 0;
}

/* When root's data_dir sits somewhere the unprivileged user cannot reach
 * (typically under /root), the cluster goes to /var/lib/pvyhs/clusters/<hash>
 * and <data_dir>/pg becomes a symlink to it, so backups still find it. */
static int place_cluster(db_embedded *e, const char *data_dir, hs_err *err) {
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/pg", data_dir);
    struct stat st;
    if (lstat(link, &st) == 0 && S_ISLNK(st.st_mode)) {
        if (!realpath(link, e->pgdir))
            return hs_err_set(err, 500, "M_UNKNOWN", "%s points nowhere", link);
        return 0;
    }
    if (mkdir_owned(e, link, err) < 0) return -1;
    if (!e->drop || pg_user_can_use(e, link)) {
        snprintf(e->pgdir, sizeof e->pgdir, "%s", link);
        return 0;
    }
    if (access(strcat(strcpy(e->datadir, link), "/data/PG_VERSION"), F_OK) == 0)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "user '%s' cannot reach %s: make its parent folders traversable "
                          "(chmod o+x)", PG_USER, link);
    rmdir(link);
    unsigned long h = 5381;
    for (const char *p = data_dir; *p; p++) h = h * 33 + (unsigned char)*p;
    mkdir("/var/lib/pvyhs", 0755);
    mkdir("/var/lib/pvyhs/clusters", 0755);
    snprintf(e->pgdir, sizeof e->pgdir, "/var/lib/pvyhs/clusters/%08lx", h & 0xffffffffUL);
    if (mkdir_owned(e, e->pgdir, err) < 0) return -1;
    if (symlink(e->pgdir, link) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot link %s: %s", link, strerror(errno));
    hs_info("user '%s' cannot reach %s; the cluster lives in %s", PG_USER, data_dir, e->pgdir);
    return 0;
}

/* A unix socket path must fit sun_path (107 bytes + NUL): fall back to a
 * short private folder under /tmp when the data directory is deep. */
static int choose_sockdir(db_embedded *e, hs_err *err) {
    struct sockaddr_un sa;
    snprintf(e->sockdir, sizeof e->sockdir, "%s/run", e->pgdir);
    if (strlen(e->sockdir) + strlen("/.s.PGSQL.5432") < sizeof sa.sun_path)
        return mkdir_owned(e, e->sockdir, err);
    unsigned long h = 5381;
    for (const char *p = e->pgdir; *p; p++) h = h * 33 + (unsigned char)*p;
    snprintf(e->sockdir, sizeof e->sockdir, "/tmp/pvyhs-pg-%08lx", h & 0xffffffffUL);
    return mkdir_owned(e, e->sockdir, err);
}

/* initdb into data.new, then rename: a crash mid-initdb leaves no cluster
 * that looks finished. */
static int init_cluster(db_embedded *e, hs_err *err) {
    char tmp[PATH_MAX + 8], initdb[PATH_MAX + 16], log[PATH_MAX + 16], cmd[PATH_MAX * 2 + 32];
    snprintf(tmp, sizeof tmp, "%s.new", e->datadir);
    snprintf(initdb, sizeof initdb, "%s/initdb", e->bindir);
    snprintf(log, sizeof log, "%s/initdb.log", e->pgdir);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) return hs_err_set(err, 500, "M_UNKNOWN", "cannot clear %s", tmp);
    hs_info("creating the embedded PostgreSQL cluster in %s", e->datadir);
    char *argv[] = {initdb, "-D", tmp, "-U", PG_USER, "--auth=trust", "--encoding=UTF8",
                    "--locale=C", NULL};
    if (run(e, argv, log) != 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "initdb failed: see %s", log);
    if (rename(tmp, e->datadir) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot rename %s: %s", tmp, strerror(errno));
    e->created = true;
    return 0;
}

static PGPing ping(const db_embedded *e, const char *db) {
    char ci[PATH_MAX + 64];
    snprintf(ci, sizeof ci, "host=%s dbname=%s user=%s connect_timeout=2", e->sockdir, db, PG_USER);
    return PQping(ci);
}

/* The postmaster's PID from the first line of postmaster.pid, or 0. */
static pid_t postmaster_pid(const db_embedded *e) {
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/postmaster.pid", e->datadir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
    return (pid_t)pid;
}

static int spawn_postgres(db_embedded *e, hs_err *err) {
    char postgres[PATH_MAX + 16], log[PATH_MAX + 16], sockopt[PATH_MAX + 32];
    snprintf(postgres, sizeof postgres, "%s/postgres", e->bindir);
    snprintf(log, sizeof log, "%s/postgres.log", e->pgdir);
    snprintf(sockopt, sizeof sockopt, "unix_socket_directories=%s", e->sockdir);
    pid_t pid = fork();
    if (pid < 0) return hs_err_set(err, 500, "M_UNKNOWN", "fork: %s", strerror(errno));
    if (pid == 0) {
        setsid();
        become_pg_user(e);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
        if (nul >= 0) dup2(nul, 0);
        /* The listen socket (and anything else) must not leak into postgres. */
        for (int i = 3; i < 1024; i++) close(i);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execl(postgres, postgres, "-D", e->datadir, "-c", "listen_addresses=", "-c", sockopt,
              "-c", "unix_socket_permissions=0700", "-c", "logging_collector=off",
              /* A new server's tables grow from empty: analyse them within
               * seconds rather than a minute, or the planner keeps choosing
               * plans made for empty tables (sequential scans) meanwhile. */
              "-c", "autovacuum_naptime=5", NULL);
        _exit(127);
    }
    e->pid = pid;
    e->child = true;
    return 0;
}

static int wait_ready(db_embedded *e, hs_err *err) {
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/postgres.log", e->pgdir);
    for (int i = 0; i < START_TIMEOUT_S * 20; i++) {
        if (ping(e, "postgres") == PQPING_OK) return 0;
        int st;
        if (e->child && waitpid(e->pid, &st, WNOHANG) == e->pid) {
            e->pid = 0;
            return hs_err_set(err, 500, "M_UNKNOWN",
                              "the embedded PostgreSQL exited at start-up: see %s", log);
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return hs_err_set(err, 500, "M_UNKNOWN",
                      "the embedded PostgreSQL did not accept connections within %d s: see %s",
                      START_TIMEOUT_S, log);
}

static int ensure_database(db_embedded *e, hs_err *err) {
    if (ping(e, PG_DB) == PQPING_OK) {
        char ci[PATH_MAX + 64];
        snprintf(ci, sizeof ci, "host=%s dbname=%s user=%s", e->sockdir, PG_DB, PG_USER);
        PGconn *c = PQconnectdb(ci);
        bool ok = PQstatus(c) == CONNECTION_OK;
        PQfinish(c);
        if (ok) return 0;
    }
    char ci[PATH_MAX + 64];
    snprintf(ci, sizeof ci, "host=%s dbname=postgres user=%s", e->sockdir, PG_USER);
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQexec(c, "CREATE DATABASE " PG_DB);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        strcmp(PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
                                                        : "",
               "42P04") != 0)
        rc = hs_err_set(err, 500, "M_UNKNOWN", "cannot create database: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

db_embedded *db_embedded_start(const char *data_dir, bool own, hs_err *err) {
    db_embedded *e = calloc(1, sizeof *e);
    e->own = own;
    if (find_bindir(e->bindir, sizeof e->bindir, err) < 0) goto fail;
    if (geteuid() == 0 && ensure_system_user(e, err) < 0) goto fail;
    if (place_cluster(e, data_dir, err) < 0) goto fail;
    snprintf(e->datadir, sizeof e->datadir, "%s/data", e->pgdir);
    if (choose_sockdir(e, err) < 0) goto fail;
    snprintf(e->conninfo, sizeof e->conninfo, "host=%s dbname=%s user=%s", e->sockdir, PG_DB,
             PG_USER);

    char pv[PATH_MAX + 16];
    snprintf(pv, sizeof pv, "%s/PG_VERSION", e->datadir);
    if (access(pv, F_OK) != 0 && init_cluster(e, err) < 0) goto fail;

    if (ping(e, "postgres") == PQPING_OK) {
        /* Already up: run by `serve` (we are a CLI command attaching), or
         * orphaned by a pvyhs that crashed (we hold the lock, so we adopt it). */
        e->pid = postmaster_pid(e);
        if (own) hs_info("adopting the embedded PostgreSQL already running (pid %d)", (int)e->pid);
    } else {
        if (!own) {
            hs_err_set(err, 500, "M_UNKNOWN", "the embedded PostgreSQL is not running");
            goto fail;
        }
        /* postgres itself clears a postmaster.pid whose process is gone, but
         * after a crash the old postmaster's children may hold its shared
         * memory for a moment longer: then it exits at once, and we retry. */
        int rc = -1;
        for (int attempt = 0; attempt < 10 && rc < 0; attempt++) {
            if (attempt) sleep(1);
            if (spawn_postgres(e, err) < 0) goto fail;
            rc = wait_ready(e, err);
            if (rc < 0 && e->pid > 0) goto fail; /* still running but not ready: give up */
        }
        if (rc < 0) goto fail;
    }
    if (ensure_database(e, err) < 0) goto fail;
    return e;
fail:
    db_embedded_stop(e);
    return NULL;
}

const char *db_embedded_conninfo(const db_embedded *e) { return e->conninfo; }

bool db_embedded_was_created(const db_embedded *e) { return e->created; }

static bool gone(db_embedded *e) {
    if (e->child) {
        int st;
        return waitpid(e->pid, &st, WNOHANG) == e->pid;
    }
    return kill(e->pid, 0) < 0 && errno == ESRCH;
}

void db_embedded_stop(db_embedded *e) {
    if (!e) return;
    if (e->own && e->pid > 0) {
        /* SIGINT is PostgreSQL's "fast" shutdown: roll back, checkpoint, exit. */
        kill(e->pid, SIGINT);
        int i;
        for (i = 0; i < 600 && !gone(e); i++) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (i == 600) {
            hs_warn("the embedded PostgreSQL did not stop in 30 s; sending SIGQUIT");
            kill(e->pid, SIGQUIT);
        }
    }
    free(e);
}
