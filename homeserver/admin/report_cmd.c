/* report_cmd.c — `pvyhs report list`: the reports users filed about events,
 * rooms and users (POST /rooms/…/report…, /users/…/report), oldest first.
 * Works with the server running or stopped, like `pvyhs user add`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "homeserver/client/reports.h"

static const char usage[] =
    "usage: pvyhs report list --config FILE [--json]\n"
    "\n"
    "List the reports users made (spec: reporting content), oldest first:\n"
    "when, who reported, what (an event in a room, a room, or a user), the reason\n"
    "and the score older clients send with event reports.\n"
    "  --json   one JSON array of objects (id, kind, reporter, room_id, event_id,\n"
    "           user_id, reason, score, received_ts) instead of text\n";

static void print_text(const json_t *list) {
    size_t i;
    json_t *o;
    if (!json_array_size(list)) {
        printf("no reports\n");
        return;
    }
    json_array_foreach(list, i, o) {
        time_t t = (time_t)(json_integer_value(json_object_get(o, "received_ts")) / 1000);
        struct tm tm;
        char when[32];
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const char *kind = json_string_value(json_object_get(o, "kind"));
        const char *room = json_string_value(json_object_get(o, "room_id"));
        const char *event = json_string_value(json_object_get(o, "event_id"));
        const char *user = json_string_value(json_object_get(o, "user_id"));
        printf("#%lld %s %s reported ", (long long)json_integer_value(json_object_get(o, "id")), when,
               json_string_value(json_object_get(o, "reporter")));
        if (!strcmp(kind, "event")) printf("event %s in room %s", event, room);
        else if (!strcmp(kind, "room")) printf("room %s", room);
        else printf("user %s", user);
        json_t *score = json_object_get(o, "score");
        if (score) printf(" (score %lld)", (long long)json_integer_value(score));
        const char *reason = json_string_value(json_object_get(o, "reason"));
        printf("\n    reason: %s\n", reason && *reason ? reason : "(none given)");
    }
}

static int list(const char *config, bool as_json) {
    cfg *c = admin_load_config(config);
    if (!c) return EXIT_USAGE;
    admin_runtime rt;
    int rc = admin_runtime_open(&rt, c, false);
    if (rc == EXIT_OK) {
        hs_err err = {0};
        db_conn *conn = db_acquire(rt.db, &err);
        json_t *reports = NULL;
        if (!conn || client_reports_list(conn, &reports, &err) < 0) {
            fprintf(stderr, "pvyhs report list: %s\n", err.msg);
            rc = EXIT_RUNTIME;
        } else if (as_json) {
            char *s = json_dumps(reports, JSON_INDENT(2) | JSON_ENSURE_ASCII);
            printf("%s\n", s);
            free(s);
        } else {
            print_text(reports);
        }
        json_decref(reports);
        db_release(rt.db, conn);
        admin_runtime_close(&rt);
    }
    cfg_free(c);
    return rc;
}

int admin_report(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    if (argc < 2) return admin_usage(usage, EXIT_USAGE);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) return admin_usage(usage, EXIT_OK);
    if (strcmp(argv[1], "list") != 0) return admin_usage(usage, EXIT_USAGE);
    const char *config = NULL;
    bool as_json = false;
    int o;
    optind = 1;
    argc--, argv++; /* getopt sees "list --config …" */
    while ((o = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
        if (o == 'c') config = optarg;
        else if (o == 'j') as_json = true;
        else if (o == 'h') return admin_usage(usage, EXIT_OK);
        else return admin_usage(usage, EXIT_USAGE);
    }
    if (!config || optind != argc) return admin_usage(usage, EXIT_USAGE);
    return list(config, as_json);
}
