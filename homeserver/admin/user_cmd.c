/* user_cmd.c — `pvyhs user add`: create a local account; `pvyhs user
 * suspend|unsuspend|lock|unlock`: the spec's account moderation. With the
 * server running (we attach to its database) or stopped (we start it
 * briefly). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "admin.h"
#include "homeserver/client/account_moderation.h"
#include "homeserver/client/users.h"
#include "homeserver/core/log.h"

static const char usage[] =
    "usage: pvyhs user add --config FILE NAME [--password P | --password-file F] [--admin]\n"
    "\n"
    "Create the local user NAME (a localpart such as 'alice', or '@alice:server').\n"
    "Without --password or --password-file the password is asked for on the terminal.\n"
    "--password-file - reads it from standard input (first line).\n";

static char *read_line(FILE *f) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
    return line;
}

static char *prompt(const char *what) {
    if (!isatty(STDIN_FILENO)) return NULL;
    struct termios old, quiet;
    tcgetattr(STDIN_FILENO, &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fprintf(stderr, "%s: ", what);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    char *s = read_line(stdin);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fputc('\n', stderr);
    return s;
}

static char *get_password(const char *given, const char *file) {
    if (given) return strdup(given);
    if (file) {
        FILE *f = strcmp(file, "-") ? fopen(file, "r") : stdin;
        if (!f) return NULL;
        char *s = read_line(f);
        if (f != stdin) fclose(f);
        return s;
    }
    char *a = prompt("Password"), *b = a ? prompt("Confirm password") : NULL;
    if (!a || !b || strcmp(a, b) != 0) {
        if (a && b) fprintf(stderr, "pvyhs user add: the passwords differ\n");
        free(a), free(b);
        return NULL;
    }
    free(b);
    return a;
}

static int user_add(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"password", required_argument, 0, 'p'},
                                         {"password-file", required_argument, 0, 'f'},
                                         {"admin", no_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL, *pw = NULL, *pwfile = NULL;
    bool admin = false;
    int o;
    while ((o = getopt_long(argc, argv, "c:p:f:ah", opts, NULL)) != -1) {
        if (o == 'c') path = optarg;
        else if (o == 'p') pw = optarg;
        else if (o == 'f') pwfile = optarg;
        else if (o == 'a') admin = true;
        else if (o == 'h') return admin_usage(usage, EXIT_OK);
        else return admin_usage(usage, EXIT_USAGE);
    }
    if (!path || optind != argc - 1 || (pw && pwfile)) return admin_usage(usage, EXIT_USAGE);
    cfg *c = admin_load_config(path);
    if (!c) return EXIT_USAGE;
    hs_err err = {0};
    char *user_id = hs_user_id_from_name(argv[optind], c->server_name, &err);
    char *password = user_id ? get_password(pw, pwfile) : NULL;
    int rc = EXIT_USAGE;
    if (!user_id) fprintf(stderr, "pvyhs user add: %s\n", err.msg);
    else if (!password) fprintf(stderr, "pvyhs user add: no password given\n");
    else if (!*password) fprintf(stderr, "pvyhs user add: the password is empty\n");
    else {
        admin_runtime rt;
        rc = admin_runtime_open(&rt, c, false);
        if (rc == EXIT_OK) {
            db_conn *conn = db_acquire(rt.db, &err);
            if (!conn || hs_user_create(conn, user_id, password, admin, false, &err) < 0) {
                fprintf(stderr, "pvyhs user add: %s\n", err.msg);
                rc = EXIT_RUNTIME;
            } else {
                printf("created %s%s\n", user_id, admin ? " (server admin)" : "");
            }
            db_release(rt.db, conn);
            admin_runtime_close(&rt);
        }
    }
    free(password);
    free(user_id);
    cfg_free(c);
    return rc;
}

static const char moderation_usage[] =
    "usage: pvyhs user suspend|unsuspend|lock|unlock --config FILE USER\n"
    "\n"
    "Suspend USER (a local localpart or '@user:server'): they may still log in,\n"
    "read, leave rooms, redact their own events and log out, but not send, join,\n"
    "invite, create rooms, change their profile or upload (403 M_USER_SUSPENDED).\n"
    "Lock USER: every request but logout answers 401 M_USER_LOCKED; their sessions\n"
    "are kept for the unlock. unsuspend / unlock undo them. A running server\n"
    "applies the change at once (it is told through the database).\n";

static int user_moderate(const char *verb, client_mod_kind k, bool on, int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *path = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (o == 'c') path = optarg;
        else if (o == 'h') return admin_usage(moderation_usage, EXIT_OK);
        else return admin_usage(moderation_usage, EXIT_USAGE);
    }
    if (!path || optind != argc - 1) return admin_usage(moderation_usage, EXIT_USAGE);
    cfg *c = admin_load_config(path);
    if (!c) return EXIT_USAGE;
    hs_err err = {0};
    int rc = EXIT_USAGE;
    /* Existing accounts only: the name grammar of new ones does not apply. */
    const char *name = argv[optind];
    char *user_id = NULL;
    if (name[0] == '@') {
        const char *colon = strchr(name, ':');
        if (colon && !strcmp(colon + 1, c->server_name)) user_id = strdup(name);
    } else if (*name && !strchr(name, ':')) {
        size_t n = strlen(name) + strlen(c->server_name) + 3;
        user_id = malloc(n);
        snprintf(user_id, n, "@%s:%s", name, c->server_name);
    }
    if (!user_id) {
        fprintf(stderr, "pvyhs user %s: '%s' is not a user of %s\n", verb, name, c->server_name);
    } else {
        admin_runtime rt;
        rc = admin_runtime_open(&rt, c, false);
        if (rc == EXIT_OK) {
            db_conn *conn = db_acquire(rt.db, &err);
            bool was = false;
            if (!conn || client_mod_get(conn, user_id, k, &was, NULL, &err) < 0 ||
                (was != on && client_mod_set(conn, user_id, k, on, &err) < 0)) {
                fprintf(stderr, "pvyhs user %s: %s: %s\n", verb, user_id, err.msg);
                rc = EXIT_RUNTIME;
            } else {
                printf("%s %s %s\n", user_id, was == on ? "was already" : "is now",
                       on ? client_mod_field(k) : (k == CLIENT_MOD_SUSPEND ? "unsuspended" : "unlocked"));
            }
            db_release(rt.db, conn);
            admin_runtime_close(&rt);
        }
    }
    free(user_id);
    cfg_free(c);
    return rc;
}

int admin_user(int argc, char **argv) {
    static const char top[] =
        "usage: pvyhs user add --config FILE NAME [options]\n"
        "       pvyhs user suspend|unsuspend|lock|unlock --config FILE USER\n";
    static const struct {
        const char *verb;
        client_mod_kind k;
        bool on;
    } moderation[] = {{"suspend", CLIENT_MOD_SUSPEND, true},
                      {"unsuspend", CLIENT_MOD_SUSPEND, false},
                      {"lock", CLIENT_MOD_LOCK, true},
                      {"unlock", CLIENT_MOD_LOCK, false}};
    if (argc >= 2 && !strcmp(argv[1], "add")) return user_add(argc - 1, argv + 1);
    for (size_t i = 0; argc >= 2 && i < sizeof moderation / sizeof *moderation; i++)
        if (!strcmp(argv[1], moderation[i].verb))
            return user_moderate(moderation[i].verb, moderation[i].k, moderation[i].on, argc - 1,
                                 argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "--help")) return admin_usage(top, EXIT_OK);
    return admin_usage(top, EXIT_USAGE);
}
