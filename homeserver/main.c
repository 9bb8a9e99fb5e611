/* main.c — the `pvyhs` command: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "homeserver/admin/admin.h"

static const char usage[] =
    "usage: pvyhs COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE]                 run the homeserver\n"
    "  init --server-name NAME --data-dir DIR [--config FILE]\n"
    "                                        write a config and a signing key\n"
    "  config check --config FILE            validate a config, print every problem\n"
    "  user add --config FILE NAME [--password P | --password-file F] [--admin]\n"
    "                                        create a local user\n"
    "  user suspend|unsuspend|lock|unlock --config FILE USER\n"
    "                                        account moderation (suspension, lock)\n"
    "  registration-token add|list|delete --config FILE [...]\n"
    "                                        manage registration tokens\n"
    "  media quarantine|delete|purge-remote --config FILE [...]\n"
    "                                        quarantine or delete media\n"
    "  channel create|requests|approve|deny --config FILE [...]\n"
    "                                        make channels, answer requests to join\n"
    "  report list --config FILE [--json]    the reports users made of events, rooms, users\n"
    "  server-notice send [--config FILE] USER TEXT\n"
    "                                        message a local user as the server\n"
    "\n"
    "`pvyhs COMMAND --help` tells more. Exit codes: 0 success, 1 runtime failure,\n"
    "2 bad usage or config.\n";

int main(int argc, char **argv) {
    if (argc < 2) return admin_usage(usage, EXIT_USAGE);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
        return admin_usage(usage, EXIT_OK);
    if (!strcmp(cmd, "serve")) return admin_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "init")) return admin_init(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) return admin_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "user")) return admin_user(argc - 1, argv + 1);
    if (!strcmp(cmd, "registration-token")) return admin_registration_token(argc - 1, argv + 1);
    if (!strcmp(cmd, "media")) return admin_media(argc - 1, argv + 1);
    if (!strcmp(cmd, "channel")) return admin_channel(argc - 1, argv + 1);
    if (!strcmp(cmd, "report")) return admin_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "server-notice")) return admin_server_notice(argc - 1, argv + 1);
    fprintf(stderr, "pvyhs: unknown command '%s'\n\n", cmd);
    return admin_usage(usage, EXIT_USAGE);
}
