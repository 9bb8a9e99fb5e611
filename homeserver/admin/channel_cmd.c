/* channel_cmd.c — `pvyhs channel create|requests|approve|deny`: channels
 * from the command line, and the moderation queue of join requests.
 *
 * Whatever changes a room is an event, sent as a local user through the same
 * Client-Server API a client uses, so a channel made here looks exactly like
 * one made in Element and every rule (auth rules, encryption by default,
 * publication rules) applies: over HTTP to the running server, or through
 * its handlers in this process when it is stopped (api_call.h).
 *
 * The acting user: --as, else for create the oldest server admin, and for
 * approve/deny the channel's local member with the highest power level (the
 * auth rules want the sender of an invite or kick to be a joined member
 * with the power to send it). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "api_call.h"
#include "homeserver/client/channels.h"
#include "homeserver/client/client.h"
#include "homeserver/client/users.h"
#include "rooms/rooms.h"

static const char usage[] =
    "usage: pvyhs channel create --config FILE NAME --kind private|public\n"
    "                            [--encrypted | --unencrypted] [--topic TEXT]\n"
    "                            [--alias NAME] [--as USER]\n"
    "       pvyhs channel requests --config FILE CHANNEL\n"
    "       pvyhs channel approve --config FILE CHANNEL USER [--reason TEXT] [--as USER]\n"
    "       pvyhs channel deny --config FILE CHANNEL USER [--reason TEXT] [--as USER]\n"
    "\n"
    "create    make a channel as Element makes one: private (invite only, guests\n"
    "          may join, encrypted unless --unencrypted) or public (anyone may\n"
    "          join, listed in the room directory under #ALIAS, unencrypted\n"
    "          unless --encrypted or the server encrypts every room). Prints the\n"
    "          room ID. --alias defaults to NAME in lower case, for public ones.\n"
    "          --as: the creator (default: the oldest server admin)\n"
    "requests  the users waiting to join CHANNEL (knocks), oldest first\n"
    "approve   invite USER, who asked to join\n"
    "deny      refuse USER (a kick, with --reason if given)\n"
    "          --as: who answers (default: the channel's local member with the\n"
    "          highest power level)\n"
    "\n"
    "CHANNEL is a room ID (!abc:server), an alias (#name:server) or a local\n"
    "alias's name. USER is @name:server or a local name.\n";

typedef struct chan_cmd {
    const char *action, *config, *kind, *topic, *alias, *as, *reason;
    int encrypted; /* -1 not said, 0 --unencrypted, 1 --encrypted */
    const char *arg1, *arg2;
} chan_cmd;

/* ---- the commands ------------------------------------------------------------ */

static void say_error(const char *what, int status, const json_t *resp, const hs_err *err) {
    if (status < 0 || !resp) fprintf(stderr, "pvyhs channel %s: %s\n", what, err->msg);
    else
        fprintf(stderr, "pvyhs channel %s: %d %s: %s\n", what, status,
                json_string_value(json_object_get(resp, "errcode")) ?: "",
                json_string_value(json_object_get(resp, "error")) ?: "");
}

/* Element's alias field starts as the name: lower case, spaces as dashes. */
static void default_alias(const char *name, char *out, size_t n) {
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < n; p++) {
        char ch = *p >= 'A' && *p <= 'Z' ? (char)(*p + 32) : *p;
        if (ch == ' ') ch = '-';
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("-._=/", ch))
            out[k++] = ch;
    }
    out[k] = 0;
}

/* Private without encryption while the server encrypts private presets:
 * Element's private room, made from the public preset with the private
 * state set by hand (join rule invite, guests may join, history shared,
 * the private preset's power levels). */
static void unencrypted_private(json_t *b, json_t *initial) {
    json_object_set_new(b, "preset", json_string("public_chat"));
    json_array_append_new(initial, json_pack("{s:s, s:s, s:{s:s}}", "type", "m.room.join_rules",
                                             "state_key", "", "content", "join_rule", "invite"));
    json_array_append_new(initial, json_pack("{s:s, s:s, s:{s:s}}", "type",
                                             "m.room.history_visibility", "state_key", "",
                                             "content", "history_visibility", "shared"));
    bool hydra = room_version_default()->hydra;
    json_object_set_new(b, "power_level_content_override",
                        json_pack("{s:i, s:{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}}", "invite", 0,
                                  "events", "m.room.name", 50, "m.room.power_levels", 100,
                                  "m.room.history_visibility", 100, "m.room.canonical_alias", 50,
                                  "m.room.avatar", 50, "m.room.tombstone", hydra ? 150 : 100,
                                  "m.room.server_acl", 100, "m.room.encryption", 100));
}

/* The createRoom body for a kind, as Element's create dialog sends it. */
static json_t *create_body(const cfg *c, const chan_cmd *m, const char *alias, hs_err *err) {
    bool pub = !strcmp(m->kind, "public");
    bool forced = c->encryption_default == CFG_ENCRYPT_ALL ||
                  (!pub && (c->encryption_default == CFG_ENCRYPT_INVITE ||
                            c->forbid_unencrypted_private_rooms));
    bool enc = m->encrypted >= 0 ? m->encrypted : !pub;
    if (!enc && c->encryption_default == CFG_ENCRYPT_ALL)
        return hs_err_set(err, 400, "M_FORBIDDEN", "the server encrypts every new channel "
                                                  "(encryption_enabled_by_default_for_room_type: all)"),
               NULL;
    if (!enc && !pub && c->forbid_unencrypted_private_rooms)
        return hs_err_set(err, 400, "M_FORBIDDEN", "the server forbids unencrypted private channels "
                                                  "(forbid_unencrypted_private_rooms)"),
               NULL;
    json_t *initial = json_array();
    json_t *b = json_pack("{s:s, s:s, s:s}", "name", m->arg1, "preset",
                          pub ? "public_chat" : "private_chat", "visibility",
                          pub ? "public" : "private");
    if (pub) json_object_set_new(b, "room_alias_name", json_string(alias));
    else json_array_append_new(initial, json_pack("{s:s, s:s, s:{s:s}}", "type", "m.room.guest_access",
                                                  "state_key", "", "content", "guest_access",
                                                  "can_join"));
    if (!pub && !enc && forced) unencrypted_private(b, initial);
    if (enc)
        json_array_append_new(initial, json_pack("{s:s, s:s, s:{s:s}}", "type", "m.room.encryption",
                                                 "state_key", "", "content", "algorithm",
                                                 CLIENT_MEGOLM));
    if (m->topic) json_object_set_new(b, "topic", json_string(m->topic));
    json_object_set_new(b, "initial_state", initial);
    return b;
}

/* The pool has one connection: none may be held while a request runs. */
static char *creator(admin_api *a, const chan_cmd *m, hs_err *err) {
    if (m->as) return hs_user_id_from_name(m->as, a->cfg->server_name, err);
    db_conn *c = db_acquire(a->db, err);
    char *u = c ? admin_oldest_admin(c, err) : NULL;
    db_release(a->db, c);
    return u;
}

static int do_create(admin_api *a, const chan_cmd *m) {
    hs_err err = {0};
    char *as = creator(a, m, &err);
    char alias[256];
    default_alias(m->alias ? m->alias : m->arg1, alias, sizeof alias);
    if (m->alias && strcmp(alias, m->alias)) {
        fprintf(stderr, "pvyhs channel create: '%s' is not a valid alias name\n", m->alias);
        return free(as), EXIT_USAGE;
    }
    json_t *body = as ? create_body(a->cfg, m, alias, &err) : NULL;
    if (!body) {
        fprintf(stderr, "pvyhs channel create: %s\n", err.msg);
        free(as);
        return err.status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    json_t *resp = NULL;
    int st = admin_api_call(a, as, "POST", "/_matrix/client/v3/createRoom", body, &resp, &err);
    int rc = EXIT_OK;
    if (st != 200) {
        say_error("create", st, resp, &err);
        rc = EXIT_RUNTIME;
    } else {
        printf("%s\n", json_string_value(json_object_get(resp, "room_id")));
        if (!strcmp(m->kind, "public")) printf("#%s:%s\n", alias, a->cfg->server_name);
    }
    json_decref(resp);
    json_decref(body);
    free(as);
    return rc;
}

static int do_requests(db_conn *c, const cfg *cf, const chan_cmd *m) {
    hs_err err = {0};
    char *room = client_channel_resolve(c, m->arg1, cf->server_name, &err);
    json_t *knocks = room ? client_channel_knocks(c, room, &err) : NULL;
    if (!knocks) {
        fprintf(stderr, "pvyhs channel requests: %s\n", err.msg);
        free(room);
        return err.status == 404 ? EXIT_USAGE : EXIT_RUNTIME;
    }
    size_t i;
    json_t *k;
    json_array_foreach(knocks, i, k) {
        char when[32];
        time_t t = (time_t)(json_integer_value(json_object_get(k, "ts")) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const char *name = json_string_value(json_object_get(k, "displayname"));
        const char *reason = json_string_value(json_object_get(k, "reason"));
        printf("%s\t%s\t%s\t%s\n", json_string_value(json_object_get(k, "user_id")), when,
               name ? name : "", reason ? reason : "");
    }
    json_decref(knocks);
    free(room);
    return EXIT_OK;
}

/* The user must be asking to join right now. */
static int check_knocking(db_conn *c, const char *room, const char *user, hs_err *err) {
    json_t *knocks = client_channel_knocks(c, room, err);
    if (!knocks) return -1;
    bool found = false;
    size_t i;
    json_t *k;
    json_array_foreach(knocks, i, k)
        found |= !strcmp(json_string_value(json_object_get(k, "user_id")), user);
    json_decref(knocks);
    return found ? 0 : hs_err_set(err, 404, "M_NOT_FOUND", "%s has not asked to join %s", user, room);
}

static int do_answer(admin_api *a, const chan_cmd *m) {
    bool approve = !strcmp(m->action, "approve");
    hs_err err = {0};
    db_conn *c = db_acquire(a->db, &err);
    char *room = c ? client_channel_resolve(c, m->arg1, a->cfg->server_name, &err) : NULL;
    /* The knocker may be on another server: a full user ID is taken as is. */
    char *user = !room ? NULL
                 : m->arg2[0] == '@' && strchr(m->arg2, ':') ? strdup(m->arg2)
                                                             : hs_user_id_from_name(m->arg2, a->cfg->server_name, &err);
    char *as = !user ? NULL
               : m->as ? hs_user_id_from_name(m->as, a->cfg->server_name, &err)
                       : client_channel_top_member(c, room, a->cfg->server_name, &err);
    int checked = as ? check_knocking(c, room, user, &err) : -1;
    db_release(a->db, c);
    int rc = EXIT_OK;
    if (checked < 0) {
        fprintf(stderr, "pvyhs channel %s: %s\n", m->action, err.msg);
        rc = err.status == 404 || err.status == 400 ? EXIT_USAGE : EXIT_RUNTIME;
    } else {
        char *eroom = admin_api_escape(room), path[800];
        snprintf(path, sizeof path, "/_matrix/client/v3/rooms/%s/%s", eroom,
                 approve ? "invite" : "kick");
        free(eroom);
        json_t *body = json_pack("{s:s}", "user_id", user), *resp = NULL;
        if (m->reason) json_object_set_new(body, "reason", json_string(m->reason));
        int st = admin_api_call(a, as, "POST", path, body, &resp, &err);
        if (st != 200) {
            say_error(m->action, st, resp, &err);
            rc = EXIT_RUNTIME;
        } else {
            printf("%s %s (as %s)\n", approve ? "invited" : "refused", user, as);
        }
        json_decref(resp);
        json_decref(body);
    }
    free(as);
    free(user);
    free(room);
    return rc;
}

static int run(admin_runtime *rt, const chan_cmd *m) {
    hs_err err = {0};
    int rc;
    if (!strcmp(m->action, "requests")) {
        db_conn *c = db_acquire(rt->db, &err);
        rc = c ? do_requests(c, rt->cfg, m) : EXIT_RUNTIME;
        if (!c) fprintf(stderr, "pvyhs channel: %s\n", err.msg);
        db_release(rt->db, c);
        return rc;
    }
    admin_api a = {0};
    if (admin_api_open(&a, rt, &err) < 0) {
        fprintf(stderr, "pvyhs channel %s: %s\n", m->action, err.msg);
        rc = EXIT_RUNTIME;
    } else {
        rc = !strcmp(m->action, "create") ? do_create(&a, m) : do_answer(&a, m);
    }
    admin_api_close(&a);
    return rc;
}

static int parse(int argc, char **argv, chan_cmd *m) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"kind", required_argument, 0, 'k'},
        {"encrypted", no_argument, 0, 'e'},    {"unencrypted", no_argument, 0, 'u'},
        {"topic", required_argument, 0, 't'},  {"alias", required_argument, 0, 'A'},
        {"as", required_argument, 0, 'a'},     {"reason", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int o;
    m->encrypted = -1;
    while ((o = getopt_long(argc, argv, "c:k:eut:A:a:r:h", opts, NULL)) != -1) {
        if (o == 'c') m->config = optarg;
        else if (o == 'k') m->kind = optarg;
        else if (o == 'e' || o == 'u') {
            if (m->encrypted >= 0) return EXIT_USAGE;
            m->encrypted = o == 'e';
        } else if (o == 't') m->topic = optarg;
        else if (o == 'A') m->alias = optarg;
        else if (o == 'a') m->as = optarg;
        else if (o == 'r') m->reason = optarg;
        else if (o == 'h') return admin_usage(usage, EXIT_OK) + 100;
        else return EXIT_USAGE;
    }
    int n = argc - optind;
    m->arg1 = n > 0 ? argv[optind] : NULL;
    m->arg2 = n > 1 ? argv[optind + 1] : NULL;
    if (!m->config) return EXIT_USAGE;
    if (!strcmp(m->action, "create"))
        return n == 1 && *m->arg1 && m->kind && (!strcmp(m->kind, "private") || !strcmp(m->kind, "public")) &&
                       !m->reason
                   ? 0
                   : EXIT_USAGE;
    if (m->kind || m->encrypted >= 0 || m->topic || m->alias) return EXIT_USAGE;
    if (!strcmp(m->action, "requests")) return n == 1 && !m->as && !m->reason ? 0 : EXIT_USAGE;
    return n == 2 ? 0 : EXIT_USAGE;
}

int admin_channel(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return admin_usage(usage, argc < 2 ? EXIT_USAGE : EXIT_OK);
    chan_cmd m = {.action = argv[1]};
    if (strcmp(m.action, "create") && strcmp(m.action, "requests") && strcmp(m.action, "approve") &&
        strcmp(m.action, "deny"))
        return admin_usage(usage, EXIT_USAGE);
    int rc = parse(argc - 1, argv + 1, &m);
    if (rc >= 100) return EXIT_OK; /* --help */
    if (rc) return admin_usage(usage, rc);
    cfg *c = admin_load_config(m.config);
    if (!c) return EXIT_USAGE;
    admin_runtime rt;
    rc = admin_runtime_open(&rt, c, false);
    if (rc == EXIT_OK) {
        rc = run(&rt, &m);
        admin_runtime_close(&rt);
    }
    cfg_free(c);
    return rc;
}
