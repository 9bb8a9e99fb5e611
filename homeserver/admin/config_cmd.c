/* config_cmd.c — `pvyhs config check`. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"

static const char usage[] =
    "usage: pvyhs config check --config FILE\n"
    "\n"
    "Validate FILE and print every problem (file:line: error|warning: key: what).\n"
    "Exits 0 when it is valid (warnings allowed), 2 when it has errors.\n";

int admin_config(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "check") != 0)
        return admin_usage(usage, argc >= 2 && !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE);
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *path = NULL;
    int o;
    argc--, argv++;
    while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (o == 'c') path = optarg;
        else if (o == 'h') return admin_usage(usage, EXIT_OK);
        else return admin_usage(usage, EXIT_USAGE);
    }
    if (!path || optind != argc) return admin_usage(usage, EXIT_USAGE);
    int errors = 0, warnings = 0;
    cfg *c = cfg_load(path, stdout, &errors, &warnings);
    if (!c) {
        printf("%s: %d error(s), %d warning(s)\n", path, errors, warnings);
        return EXIT_USAGE;
    }
    printf("%s: valid (%d warning(s))\n", path, warnings);
    cfg_free(c);
    return EXIT_OK;
}
