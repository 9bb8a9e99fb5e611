/* load.c — cfg_load and cfg_free: read the file, apply the schema, then the
 * defaults that depend on other keys and the checks that span several keys
 * (TLS listeners need certificate files, open registration needs a guard).
 * Everything found wrong is reported before giving up, so an admin fixes a
 * file in one round. */
#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* The line of key in map, for problems about a key that is given; the map's
 * own line when it is absent. */
static int cfg_line_of(const cfg_node *map, const char *key) {
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->str, key)) return map->keys[i]->line;
    return map->line;
}

static bool cfg_set_string(cfg_ctx *x, char **field, char *value, const char *key) {
    if (!value) {
        cfg_oom(x, 0, key);
        return false;
    }
    *field = value;
    return true;
}

static char *cfg_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cfg_fmt(const char *fmt, ...) {
    char *r;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&r, fmt, ap) < 0) r = NULL;
    va_end(ap);
    return r;
}

/* Synapse's default public_baseurl is https://<server_name>/; ours points at
 * the listener that serves clients, so a fresh install works without a proxy. */
static char *cfg_default_baseurl(const cfg *c) {
    const cfg_listener *l = &c->listeners[0];
    for (size_t i = 0; i < c->n_listeners; i++)
        if (c->listeners[i].res_client) {
            l = &c->listeners[i];
            break;
        }
    char *host = cfg_server_name_host(c->server_name);
    char *r = host ? cfg_fmt("%s://%s:%d/", l->tls ? "https" : "http", host, l->port) : NULL;
    free(host);
    return r;
}

static void cfg_derived_defaults(cfg_ctx *x, cfg *c) {
    const char *why;
    bool name_ok = c->server_name && cfg_server_name_valid(c->server_name, &why);
    if (!c->signing_key_path && name_ok)
        cfg_set_string(x, &c->signing_key_path, cfg_fmt("%s/%s.signing.key", x->dir, c->server_name),
                       "signing_key_path");
    if (!c->media_store_path && c->data_dir)
        cfg_set_string(x, &c->media_store_path, cfg_fmt("%s/media_store", c->data_dir),
                       "media_store_path");
    if (!c->public_baseurl && name_ok && c->n_listeners)
        cfg_set_string(x, &c->public_baseurl, cfg_default_baseurl(c), "public_baseurl");
}

/* The line of the first listener that says tls: true, for the TLS errors. */
static int cfg_tls_line(const cfg_node *root) {
    const cfg_node *ls = cfg_map_get(root, "listeners");
    for (size_t i = 0; ls && ls->kind == CFG_SEQ && i < ls->n; i++) {
        const cfg_node *t = cfg_map_get(ls->vals[i], "tls");
        bool on;
        if (t && cfg_bool_value(t, &on) && on) return t->line;
    }
    return cfg_line_of(root, "listeners");
}

static void cfg_check_tls_file(cfg_ctx *x, const cfg_node *root, const char *key, const char *path) {
    if (!path)
        cfg_error(x, cfg_tls_line(root), key, "missing: a listener has tls: true");
    else
        cfg_file_readable(x, cfg_line_of(root, key), key, path);
}

static void cfg_cross_checks(cfg_ctx *x, cfg *c, const cfg_node *root) {
    bool tls = false;
    for (size_t i = 0; i < c->n_listeners; i++) tls |= c->listeners[i].tls;
    if (tls) {
        cfg_check_tls_file(x, root, "tls_certificate_path", c->tls_certificate_path);
        cfg_check_tls_file(x, root, "tls_private_key_path", c->tls_private_key_path);
    }
    /* Synapse refuses this too: open sign-up with no check is how spam bots
     * get accounts. pvyhs has no email or captcha, so a token is the check. */
    if (c->enable_registration && !c->registration_requires_token &&
        !c->enable_registration_without_verification)
        cfg_error(x, cfg_line_of(root, "enable_registration"), "enable_registration",
                  "open registration without verification invites spam accounts; set "
                  "registration_requires_token: true, or enable_registration_without_verification: "
                  "true if you really mean it");
}

/* Calls fail in confusing ways when clients are sent TURN URIs without
 * credentials, so say it at start-up. */
static void cfg_check_turn(cfg_ctx *x, const cfg *c, const cfg_node *root) {
    if (c->turn_uris.n && !c->turn_shared_secret && !(c->turn_username && c->turn_password))
        cfg_warning(x, cfg_line_of(root, "turn_uris"), "turn_uris",
                    "has no effect without turn_shared_secret (or turn_username and "
                    "turn_password)");
}

static char *cfg_dir_of(const char *path) {
    char *copy = strdup(path);
    char *d = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    return d;
}

cfg *cfg_load(const char *path, FILE *diag, int *n_errors, int *n_warnings) {
    cfg_ctx x = {.file = path ? path : "(no file)", .diag = diag};
    cfg *c = calloc(1, sizeof *c);
    cfg_node *root = NULL;
    if (!c || !path) {
        cfg_error(&x, 0, "config", c ? "no file given" : "out of memory");
    } else if (!(c->path = realpath(path, NULL))) {
        cfg_error(&x, 0, "config", "cannot read %s: %s", path, strerror(errno));
    } else if (!(x.dir = cfg_dir_of(c->path))) {
        cfg_oom(&x, 0, "config");
    } else if ((root = cfg_yaml_load(&x, c->path))) {
        cfg_apply_table(&x, cfg_top_keys, root, root->line, "", c, true);
        cfg_derived_defaults(&x, c);
        cfg_cross_checks(&x, c, root);
        cfg_check_turn(&x, c, root);
        cfg_check_key_servers(&x, c, root);
    }
    cfg_node_free(root);
    free(x.dir);
    if (n_errors) *n_errors = x.n_errors;
    if (n_warnings) *n_warnings = x.n_warnings;
    if (x.n_errors) {
        cfg_free(c);
        return NULL;
    }
    return c;
}

void cfg_free(cfg *c) {
    if (!c) return;
    cfg_table_free(cfg_top_keys, c);
    cfg_listeners_free(c);
    cfg_key_servers_free(c);
    cfg_media_free(c);
    cfg_channels_free(c);
    free(c->db_dsn);
    free(c->path);
    free(c);
}
