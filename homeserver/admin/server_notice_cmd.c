/* server_notice_cmd.c — `pvyhs server-notice send USER TEXT`: a server
 * notice from the command line, through Synapse's admin API
 * (POST /_synapse/admin/v1/send_server_notice) as a server admin, so the
 * notice is exactly what the API would send: the user's notices room made
 * or reused, the user invited, the message sent by the system user. The
 * request reaches the running server over HTTP, or its handlers in this
 * process when it is stopped (api_call.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "api_call.h"
#include "homeserver/client/users.h"

static const char usage[] =
    "usage: pvyhs server-notice send [--config FILE] USER TEXT [--as ADMIN]\n"
    "\n"
    "Send TEXT (an m.text message) to the local user USER (@name:server or a\n"
    "local name) in their server notices room, from the server notices user.\n"
    "The room is made on the first notice and tagged m.server_notice; the\n"
    "user is invited to it (joined at once with auto_join) and cannot reject\n"
    "the invite. Needs the server_notices block in the config. Prints the\n"
    "event ID.\n"
    "  --config FILE  the server's config (default ./homeserver.yaml)\n"
    "  --as ADMIN     the server admin who sends it (default: the oldest one)\n";

typedef struct notice_cmd {
    const char *config, *as, *user, *text;
} notice_cmd;

static void say_error(int status, const json_t *resp, const hs_err *err) {
    if (status < 0 || !resp) fprintf(stderr, "pvyhs server-notice send: %s\n", err->msg);
    else
        fprintf(stderr, "pvyhs server-notice send: %d %s: %s\n", status,
                json_string_value(json_object_get(resp, "errcode")) ?: "",
                json_string_value(json_object_get(resp, "error")) ?: "");
}

/* The pool has one connection: none may be held while a request runs. */
static char *sender(admin_api *a, const notice_cmd *m, hs_err *err) {
    if (m->as) return hs_user_id_from_name(m->as, a->cfg->server_name, err);
    db_conn *c = db_acquire(a->db, err);
    char *u = c ? admin_oldest_admin(c, err) : NULL;
    db_release(a->db, c);
    return u;
}

static int do_send(admin_api *a, const notice_cmd *m) {
    hs_err err = {0};
    char *user = hs_user_id_from_name(m->user, a->cfg->server_name, &err);
    char *as = user ? sender(a, m, &err) : NULL;
    if (!as) {
        fprintf(stderr, "pvyhs server-notice send: %s\n", err.msg);
        free(user);
        return err.status == 400 || err.status == 404 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    json_t *body = json_pack("{s:s, s:{s:s, s:s}}", "user_id", user, "content", "msgtype",
                             "m.text", "body", m->text);
    json_t *resp = NULL;
    int st = admin_api_call(a, as, "POST", "/_synapse/admin/v1/send_server_notice", body, &resp,
                            &err);
    int rc = EXIT_OK;
    if (st != 200) {
        say_error(st, resp, &err);
        rc = st == 400 || st == 403 || st == 404 ? EXIT_USAGE : EXIT_RUNTIME;
    } else {
        printf("%s\n", json_string_value(json_object_get(resp, "event_id")));
    }
    json_decref(resp);
    json_decref(body);
    free(as);
    free(user);
    return rc;
}

static int parse(int argc, char **argv, notice_cmd *m) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"as", required_argument, 0, 'a'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:a:h", opts, NULL)) != -1) {
        if (o == 'c') m->config = optarg;
        else if (o == 'a') m->as = optarg;
        else if (o == 'h') return admin_usage(usage, EXIT_OK) + 100;
        else return EXIT_USAGE;
    }
    if (argc - optind != 2 || !*argv[optind + 1]) return EXIT_USAGE;
    m->user = argv[optind];
    m->text = argv[optind + 1];
    return 0;
}

int admin_server_notice(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return admin_usage(usage, argc < 2 ? EXIT_USAGE : EXIT_OK);
    if (strcmp(argv[1], "send")) return admin_usage(usage, EXIT_USAGE);
    notice_cmd m = {.config = "homeserver.yaml"};
    int rc = parse(argc - 1, argv + 1, &m);
    if (rc >= 100) return EXIT_OK; /* --help */
    if (rc) return admin_usage(usage, rc);
    cfg *c = admin_load_config(m.config);
    if (!c) return EXIT_USAGE;
    if (!c->server_notices) {
        fprintf(stderr, "pvyhs server-notice send: server notices are off: add a server_notices "
                        "block to %s\n", m.config);
        cfg_free(c);
        return EXIT_USAGE;
    }
    admin_runtime rt;
    rc = admin_runtime_open(&rt, c, false);
    if (rc == EXIT_OK) {
        hs_err err = {0};
        admin_api a = {0};
        if (admin_api_open(&a, &rt, &err) < 0) {
            fprintf(stderr, "pvyhs server-notice send: %s\n", err.msg);
            rc = EXIT_RUNTIME;
        } else {
            rc = do_send(&a, &m);
        }
        admin_api_close(&a);
        admin_runtime_close(&rt);
    }
    cfg_free(c);
    return rc;
}
