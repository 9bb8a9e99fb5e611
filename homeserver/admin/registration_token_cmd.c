/* registration_token_cmd.c — `pvyhs registration-token add|list|delete`:
 * the tokens people sign up with when registration_requires_token is on.
 * Works with the server running (we use its database) or stopped (we start
 * the embedded PostgreSQL briefly), like `pvyhs user add`.
 *
 * Only a hash of each token is stored: `add` shows the token once; `list`
 * names tokens by their first characters. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "homeserver/client/registration_tokens.h"
#include "homeserver/core/clock.h"

static const char usage[] =
    "usage: pvyhs registration-token add --config FILE [--uses N] [--expires DATE] [--token T]\n"
    "       pvyhs registration-token list --config FILE\n"
    "       pvyhs registration-token delete --config FILE TOKEN\n"
    "\n"
    "Registration tokens let people create an account when the config has\n"
    "registration_requires_token: true (spec: m.login.registration_token).\n"
    "\n"
    "add      make a token and print it (only its hash is kept: note it down)\n"
    "  --uses N         how many accounts it may create (default: unlimited)\n"
    "  --expires DATE   when it stops working, in UTC: YYYY-MM-DD (00:00 that day)\n"
    "                   or YYYY-MM-DDTHH:MM[:SS][Z] (default: never)\n"
    "  --token T        the token itself: 1-64 of A-Z a-z 0-9 . _ ~ -\n"
    "                   (default: 16 random letters and digits)\n"
    "list     every token: its first characters, uses, pending sign-ups, expiry\n"
    "delete   remove TOKEN (the whole token)\n";

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

static void format_ts(long long ms, char *out, size_t n) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

typedef struct tok_cmd {
    const char *config, *token;
    int uses;             /* -1 unlimited */
    long long expiry_ts;  /* 0 never */
} tok_cmd;

/* Open the runtime and a connection, run fn, close. Returns the exit code. */
static int with_db(const char *config, int (*fn)(db_conn *c, const tok_cmd *t), const tok_cmd *t) {
    cfg *c = admin_load_config(config);
    if (!c) return EXIT_USAGE;
    admin_runtime rt;
    int rc = admin_runtime_open(&rt, c, false);
    if (rc == EXIT_OK) {
        hs_err err = {0};
        db_conn *conn = db_acquire(rt.db, &err);
        if (!conn) {
            fprintf(stderr, "pvyhs registration-token: %s\n", err.msg);
            rc = EXIT_RUNTIME;
        } else {
            rc = fn(conn, t);
        }
        db_release(rt.db, conn);
        admin_runtime_close(&rt);
    }
    cfg_free(c);
    return rc;
}

static int do_add(db_conn *c, const tok_cmd *t) {
    hs_err err = {0};
    char *tok = client_regtoken_add(c, t->token, t->uses, t->expiry_ts, &err);
    if (!tok) {
        fprintf(stderr, "pvyhs registration-token add: %s\n", err.msg);
        return err.status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    printf("%s\n", tok);
    free(tok);
    return EXIT_OK;
}

static int do_list(db_conn *c, const tok_cmd *t) {
    (void)t;
    hs_err err = {0};
    client_regtoken_info *v = NULL;
    size_t n = 0;
    if (client_regtoken_list(c, &v, &n, &err) < 0) {
        fprintf(stderr, "pvyhs registration-token list: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    printf("%-10s %-10s %-8s %-21s %s\n", "TOKEN", "USES", "PENDING", "EXPIRES", "STATE");
    long long now = hs_now_ms();
    for (size_t i = 0; i < n; i++) {
        char uses[32], exp[32] = "never";
        if (v[i].uses_allowed < 0) snprintf(uses, sizeof uses, "%d/-", v[i].completed);
        else snprintf(uses, sizeof uses, "%d/%d", v[i].completed, v[i].uses_allowed);
        if (v[i].expiry_ts) format_ts(v[i].expiry_ts, exp, sizeof exp);
        const char *state = v[i].expiry_ts && v[i].expiry_ts <= now ? "expired"
                            : v[i].uses_allowed >= 0 && v[i].completed >= v[i].uses_allowed
                                ? "used up"
                                : "valid";
        printf("%s…%*s %-10s %-8d %-21s %s\n", v[i].hint, (int)(9 - strlen(v[i].hint)), "", uses,
               v[i].pending, exp, state);
    }
    free(v);
    return EXIT_OK;
}

static int do_delete(db_conn *c, const tok_cmd *t) {
    hs_err err = {0};
    if (client_regtoken_delete(c, t->token, &err) < 0) {
        fprintf(stderr, "pvyhs registration-token delete: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    printf("deleted\n");
    return EXIT_OK;
}

int admin_registration_token(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"uses", required_argument, 0, 'u'},
                                         {"expires", required_argument, 0, 'e'},
                                         {"token", required_argument, 0, 't'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2) return admin_usage(usage, EXIT_USAGE);
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) return admin_usage(usage, EXIT_OK);
    tok_cmd t = {.uses = -1};
    int o;
    optind = 1;
    argc--, argv++; /* getopt sees "add --config …" */
    while ((o = getopt_long(argc, argv, "c:u:e:t:h", opts, NULL)) != -1) {
        char *end;
        if (o == 'c') t.config = optarg;
        else if (o == 'h') return admin_usage(usage, EXIT_OK);
        else if (o == 'u') {
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > INT_MAX) {
                fprintf(stderr, "pvyhs registration-token: --uses wants a whole number >= 1\n");
                return EXIT_USAGE;
            }
            t.uses = (int)n;
        } else if (o == 'e') {
            t.expiry_ts = parse_date(optarg);
            if (t.expiry_ts < 0 || t.expiry_ts <= hs_now_ms()) {
                fprintf(stderr, "pvyhs registration-token: --expires wants a future date "
                                "(YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]Z, UTC)\n");
                return EXIT_USAGE;
            }
        } else if (o == 't') t.token = optarg;
        else return admin_usage(usage, EXIT_USAGE);
    }
    bool add = !strcmp(sub, "add"), list = !strcmp(sub, "list"), del = !strcmp(sub, "delete");
    if (!t.config || !(add || list || del)) return admin_usage(usage, EXIT_USAGE);
    if ((add || list) && optind != argc) return admin_usage(usage, EXIT_USAGE);
    if (!add && (t.token || t.uses >= 0 || t.expiry_ts)) return admin_usage(usage, EXIT_USAGE);
    if (del) {
        if (optind != argc - 1) return admin_usage(usage, EXIT_USAGE);
        t.token = argv[optind];
    }
    if (add && t.token && !client_regtoken_syntax_ok(t.token)) {
        fprintf(stderr, "pvyhs registration-token add: a token is 1 to 64 characters of A-Z, a-z, "
                        "0-9, '.', '_', '~' and '-'\n");
        return EXIT_USAGE;
    }
    return with_db(t.config, add ? do_add : list ? do_list : do_delete, &t);
}
