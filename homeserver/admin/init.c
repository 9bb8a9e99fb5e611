/* init.c — `pvyhs init`: write a config and a signing key, nothing else. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin.h"
#include "homeserver/core/signing.h"

static const char usage[] =
    "usage: pvyhs init --server-name NAME --data-dir DIR [--config FILE]\n"
    "\n"
    "Write FILE (default ./homeserver.yaml) for NAME with its data in DIR, and a\n"
    "new signing key NAME.signing.key beside it. Refuses to overwrite either.\n";

int admin_init(int argc, char **argv) {
    static const struct option opts[] = {{"server-name", required_argument, 0, 's'},
                                         {"data-dir", required_argument, 0, 'd'},
                                         {"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *name = NULL, *data = NULL, *path = "homeserver.yaml";
    int o;
    while ((o = getopt_long(argc, argv, "s:d:c:h", opts, NULL)) != -1) {
        if (o == 's') name = optarg;
        else if (o == 'd') data = optarg;
        else if (o == 'c') path = optarg;
        else if (o == 'h') return admin_usage(usage, EXIT_OK);
        else return admin_usage(usage, EXIT_USAGE);
    }
    if (!name || !data || optind != argc) return admin_usage(usage, EXIT_USAGE);

    char dir[4096], key_path[4096], key_name[512];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(key_name, sizeof key_name, "%s.signing.key", name);
    /* A server name may carry a port; keep the file name portable. */
    for (char *p = key_name; *p; p++)
        if (*p == ':' || *p == '/' || *p == '[' || *p == ']') *p = '_';
    snprintf(key_path, sizeof key_path, "%s/%s", dirname(dir), key_name);
    if (access(path, F_OK) == 0 || access(key_path, F_OK) == 0) {
        fprintf(stderr, "pvyhs init: %s already exists; not overwriting\n",
                access(path, F_OK) == 0 ? path : key_path);
        return EXIT_RUNTIME;
    }
    hs_err err = {0};
    hs_signing_key k;
    if (hs_signing_key_generate(&k) < 0 || hs_signing_key_save(key_path, &k, &err) < 0) {
        fprintf(stderr, "pvyhs init: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    if (cfg_write_default(path, name, data, key_name, 8008, &err) < 0) {
        unlink(key_path);
        fprintf(stderr, "pvyhs init: %s\n", err.msg);
        return EXIT_RUNTIME;
    }
    /* Validate what we wrote, so a bad server name is caught now. */
    cfg *c = admin_load_config(path);
    if (!c) {
        unlink(path);
        unlink(key_path);
        return EXIT_USAGE;
    }
    if (mkdir(c->data_dir, 0700) < 0 && errno != EEXIST)
        fprintf(stderr, "pvyhs init: warning: cannot create %s: %s\n", c->data_dir, strerror(errno));
    printf("wrote %s and %s (key %s); start with: pvyhs serve --config %s\n", path, key_path,
           k.key_id, path);
    cfg_free(c);
    return EXIT_OK;
}
