/* media_cmd.c — `pvyhs media quarantine|delete|purge-remote`: the admin's
 * tools for media, with the server running (we use its database) or stopped
 * (we start the embedded PostgreSQL briefly), like `pvyhs user add`. None of
 * them needs the media key: they never read a file's content. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "media/media.h"

static const char usage[] =
    "usage: pvyhs media quarantine --config FILE [--undo] MXC_URI... | --user USER_ID\n"
    "       pvyhs media delete --config FILE MXC_URI... | --before DATE\n"
    "       pvyhs media purge-remote --config FILE --before DATE\n"
    "\n"
    "quarantine    refuse media to everyone (404), with every copy of the same\n"
    "              content; --user: all media USER_ID uploaded; --undo lifts it\n"
    "delete        remove media, their thumbnails and stored files, from disk and\n"
    "              database; --before: local media last downloaded before DATE\n"
    "purge-remote  remove cached copies of other servers' media last downloaded\n"
    "              before DATE (they are fetched again when asked for)\n"
    "\n"
    "MXC_URI is mxc://server/media_id (or server/media_id). DATE is UTC:\n"
    "YYYY-MM-DD (00:00 that day) or YYYY-MM-DDTHH:MM[:SS][Z]. Quarantined media\n"
    "is kept by --before; delete it by its URI.\n";

/* "2026-12-31" or "2026-12-31T18:00[:00][Z]" (UTC) into ms; -1 if malformed. */
static long long parse_date(const char *s) {
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%d", &tm);
    if (!end) return -1;
    if (*end == 'T' || *end == ' ') {
        const char *t = strptime(end + 1, "%H:%M", &tm);
        if (!t) return -1;
        if (*t == ':' && !(t = strptime(t + 1, "%S", &tm))) return -1;
        end = t;
    }
    if (*end == 'Z') end++;
    if (*end) return -1;
    time_t when = timegm(&tm);
    return when == (time_t)-1 ? -1 : (long long)when * 1000;
}

typedef struct media_cmd {
    const char *action, *config, *user, *before_s;
    long long before;
    bool undo;
    char **uris;
    int n_uris;
} media_cmd;

static int run(db_conn *c, const cfg *cf, const media_cmd *m) {
    hs_err err = {0};
    long total = 0, n = 0;
    if (!strcmp(m->action, "purge-remote")) {
        n = media_delete_before(c, cf, true, m->before, &err);
        total = n;
    } else if (!strcmp(m->action, "delete") && m->before_s) {
        n = media_delete_before(c, cf, false, m->before, &err);
        total = n;
    } else if (!strcmp(m->action, "quarantine") && m->user) {
        n = media_quarantine_user(c, m->user, "admin", m->undo, &err);
        total = n;
    } else {
        for (int i = 0; i < m->n_uris && n >= 0; i++) {
            n = !strcmp(m->action, "delete") ? media_delete(c, cf, m->uris[i], &err)
                                             : media_quarantine(c, m->uris[i], "admin", m->undo,
                                                                &err);
            if (n == 0) fprintf(stderr, "pvyhs media %s: %s: no such media\n", m->action, m->uris[i]);
            if (n > 0) total += n;
        }
    }
    if (n < 0) {
        fprintf(stderr, "pvyhs media %s: %s\n", m->action, err.msg);
        return err.status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    const char *what = !strcmp(m->action, "quarantine") ? (m->undo ? "released" : "quarantined")
                       : "deleted";
    printf("%s %ld media\n", what, total);
    return EXIT_OK;
}

static int parse(int argc, char **argv, media_cmd *m) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"user", required_argument, 0, 'u'},
                                         {"before", required_argument, 0, 'b'},
                                         {"undo", no_argument, 0, 'U'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:u:b:Uh", opts, NULL)) != -1) {
        if (o == 'c') m->config = optarg;
        else if (o == 'u') m->user = optarg;
        else if (o == 'b') m->before_s = optarg;
        else if (o == 'U') m->undo = true;
        else if (o == 'h') return admin_usage(usage, EXIT_OK) + 100;
        else return EXIT_USAGE;
    }
    m->uris = argv + optind;
    m->n_uris = argc - optind;
    bool purge = !strcmp(m->action, "purge-remote"), del = !strcmp(m->action, "delete");
    if (!m->config) return EXIT_USAGE;
    if (m->before_s && (m->before = parse_date(m->before_s)) < 0) {
        fprintf(stderr, "pvyhs media %s: --before '%s' is not a date (YYYY-MM-DD)\n", m->action,
                m->before_s);
        return EXIT_USAGE;
    }
    if (purge) return m->before_s && !m->n_uris && !m->user && !m->undo ? 0 : EXIT_USAGE;
    if (del) return !m->user && !m->undo && (!!m->before_s != (m->n_uris > 0)) ? 0 : EXIT_USAGE;
    return !m->before_s && (!!m->user != (m->n_uris > 0)) ? 0 : EXIT_USAGE;
}

int admin_media(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return admin_usage(usage, argc < 2 ? EXIT_USAGE : EXIT_OK);
    media_cmd m = {.action = argv[1]};
    if (strcmp(m.action, "quarantine") && strcmp(m.action, "delete") &&
        strcmp(m.action, "purge-remote"))
        return admin_usage(usage, EXIT_USAGE);
    int rc = parse(argc - 1, argv + 1, &m);
    if (rc >= 100) return EXIT_OK; /* --help */
    if (rc) return admin_usage(usage, rc);
    cfg *c = admin_load_config(m.config);
    if (!c) return EXIT_USAGE;
    admin_runtime rt;
    rc = admin_runtime_open(&rt, c, false);
    if (rc == EXIT_OK) {
        hs_err err = {0};
        db_conn *conn = db_acquire(rt.db, &err);
        if (!conn) {
            fprintf(stderr, "pvyhs media: %s\n", err.msg);
            rc = EXIT_RUNTIME;
        } else {
            rc = run(conn, c, &m);
            db_release(rt.db, conn);
        }
        admin_runtime_close(&rt);
    }
    cfg_free(c);
    return rc;
}
