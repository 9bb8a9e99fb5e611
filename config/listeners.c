/* listeners.c — the `listeners` list: which ports to serve, on which addresses,
 * with what. Synapse's shape and defaults, so its listener blocks carry over:
 * a listener without bind_addresses listens on every address (:: and 0.0.0.0),
 * and type defaults to http. pvyhs only has http listeners; Synapse's metrics
 * and manhole listeners are skipped with a warning rather than failing the
 * whole file. With no `listeners` key at all we serve client and federation
 * APIs on 127.0.0.1:8008, the quick-start address, reachable only locally. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

typedef struct cfg_listener_raw {
    cfg_listener l;
    char *type;
} cfg_listener_raw;

typedef struct cfg_resource_raw {
    cfg_strlist names;
    bool compress;
} cfg_resource_raw;

static const char *const cfg_default_bind[] = {"::", "0.0.0.0", NULL};

/* Synapse's KNOWN_RESOURCES: the names a Synapse listener may carry. */
static const char *const cfg_known_resources[] = {
    "client", "consent", "federation", "health", "keys", "media",
    "metrics", "openid", "replication", "static", NULL,
};

static bool cfg_resource_known(const char *s, const char **why) {
    for (const char *const *k = cfg_known_resources; *k; k++)
        if (!strcmp(*k, s)) return true;
    *why = "known names are client, federation, keys, media, openid, health, metrics, "
           "consent, replication, static";
    return false;
}

static bool cfg_check_resource_names(cfg_ctx *x, const cfg_node *v, const char *key, void *field) {
    const cfg_strlist *l = field;
    char ikey[CFG_PATH_MAX];
    bool all = true;
    for (size_t i = 0; i < l->n && i < v->n; i++) {
        const char *why;
        if (cfg_resource_known(l->v[i], &why)) continue;
        cfg_path_index(ikey, sizeof ikey, key, i);
        cfg_error(x, v->vals[i]->line, ikey, "unknown resource '%s'; %s", l->v[i], why);
        all = false;
    }
    return all;
}

static const cfg_key cfg_resource_keys[] = {
    {.name = "names", .type = CFG_T_STRLIST, .off = offsetof(cfg_resource_raw, names),
     .flags = CFG_REQUIRED, .check = cfg_check_resource_names},
    {.name = "compress", .type = CFG_T_BOOL, .off = offsetof(cfg_resource_raw, compress)},
    {0},
};

static void cfg_resource_flags(cfg_listener *l, const cfg_strlist *names) {
    for (size_t i = 0; i < names->n; i++) {
        if (!strcmp(names->v[i], "client")) l->res_client = true;
        /* "keys" is the federation key API: it needs the federation listener. */
        if (!strcmp(names->v[i], "federation") || !strcmp(names->v[i], "keys"))
            l->res_federation = true;
    }
}

static bool cfg_parse_resources(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                                void *base) {
    cfg_listener *l = &((cfg_listener_raw *)base)->l;
    char ikey[CFG_PATH_MAX], buf[80];
    (void)line;
    if (!v) { /* no resources: serve what a homeserver serves */
        l->res_client = l->res_federation = true;
        return true;
    }
    if (v->kind != CFG_SEQ || v->n == 0) {
        cfg_error(x, v->line, key, "expected a list such as [{names: [client, federation]}], got %s",
                  v->kind == CFG_SEQ ? "an empty list" : cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    for (size_t i = 0; i < v->n; i++) {
        cfg_resource_raw r = {0};
        cfg_path_index(ikey, sizeof ikey, key, i);
        if (v->vals[i]->kind != CFG_MAP) {
            cfg_error(x, v->vals[i]->line, ikey, "expected a mapping such as {names: [client]}, got %s",
                      cfg_node_what(v->vals[i], buf, sizeof buf));
            continue;
        }
        cfg_apply_table(x, cfg_resource_keys, v->vals[i], v->vals[i]->line, ikey, &r, true);
        cfg_resource_flags(l, &r.names);
        cfg_table_free(cfg_resource_keys, &r);
    }
    return true;
}

static const cfg_key cfg_listener_keys[] = {
    {.name = "port", .type = CFG_T_INT, .off = offsetof(cfg_listener_raw, l.port),
     .flags = CFG_REQUIRED, .min = 1, .max = 65535},
    {.name = "bind_addresses", .type = CFG_T_STRLIST, .off = offsetof(cfg_listener_raw, l.bind_addresses),
     .def_list = cfg_default_bind, .check = cfg_check_ip_literals},
    {.name = "type", .type = CFG_T_STR, .off = offsetof(cfg_listener_raw, type), .def_str = "http"},
    {.name = "tls", .type = CFG_T_BOOL, .off = offsetof(cfg_listener_raw, l.tls)},
    {.name = "x_forwarded", .type = CFG_T_BOOL, .off = offsetof(cfg_listener_raw, l.x_forwarded)},
    {.name = "resources", .type = CFG_T_CUSTOM, .parse = cfg_parse_resources},
    {0},
};

static int cfg_listener_push(cfg *c, cfg_listener *l) {
    cfg_listener *v = realloc(c->listeners, (c->n_listeners + 1) * sizeof *v);
    if (!v) return -1;
    c->listeners = v;
    c->listeners[c->n_listeners++] = *l;
    return 0;
}

/* Whether a listener of this type is served; other types are reported. */
static bool cfg_listener_type_ok(cfg_ctx *x, const cfg_node *item, const char *key,
                                 const char *type) {
    const cfg_node *tn = cfg_map_get(item, "type");
    int line = tn ? tn->line : item->line;
    char tkey[CFG_PATH_MAX];
    cfg_path_key(tkey, sizeof tkey, key, "type");
    if (!type || !strcmp(type, "http")) return type != NULL;
    if (!strcmp(type, "metrics") || !strcmp(type, "manhole"))
        cfg_warning(x, line, tkey, "'%s' listeners are not supported by pvyhs; this listener is ignored",
                    type);
    else
        cfg_error(x, line, tkey, "unknown listener type '%s'; pvyhs serves type http", type);
    return false;
}

static void cfg_parse_listener(cfg_ctx *x, cfg *c, const cfg_node *item, const char *key) {
    char buf[80];
    cfg_listener_raw r = {0};
    if (item->kind != CFG_MAP) {
        cfg_error(x, item->line, key, "expected a mapping such as {port: 8008, type: http}, got %s",
                  cfg_node_what(item, buf, sizeof buf));
        return;
    }
    int before = x->n_errors;
    cfg_apply_table(x, cfg_listener_keys, item, item->line, key, &r, true);
    if (cfg_listener_type_ok(x, item, key, r.type) && x->n_errors == before) {
        if (cfg_listener_push(c, &r.l) == 0)
            r.l.bind_addresses = (cfg_strlist){0}; /* now owned by c */
        else
            cfg_oom(x, item->line, key);
    }
    cfg_strlist_free(&r.l.bind_addresses);
    free(r.type);
}

static bool cfg_default_listener(cfg_ctx *x, cfg *c, const char *key, int line) {
    cfg_listener l = {.port = 8008, .res_client = true, .res_federation = true};
    if (cfg_strlist_push(&l.bind_addresses, "127.0.0.1") < 0 || cfg_listener_push(c, &l) < 0) {
        cfg_strlist_free(&l.bind_addresses);
        cfg_oom(x, line, key);
        return false;
    }
    return true;
}

bool cfg_parse_listeners(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base) {
    cfg *c = base;
    char ikey[CFG_PATH_MAX], buf[80];
    if (!v) return cfg_default_listener(x, c, key, line);
    if (v->kind != CFG_SEQ || v->n == 0) {
        cfg_error(x, v->line, key, "expected a list of listeners such as [{port: 8008, type: http}], got %s",
                  v->kind == CFG_SEQ ? "an empty list" : cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    int before = x->n_errors;
    for (size_t i = 0; i < v->n; i++) {
        cfg_path_index(ikey, sizeof ikey, key, i);
        cfg_parse_listener(x, c, v->vals[i], ikey);
    }
    if (c->n_listeners == 0 && x->n_errors == before) {
        cfg_error(x, v->line, key, "no http listener: pvyhs would serve nothing");
        return false;
    }
    return x->n_errors == before;
}

void cfg_listeners_free(cfg *c) {
    for (size_t i = 0; i < c->n_listeners; i++) cfg_strlist_free(&c->listeners[i].bind_addresses);
    free(c->listeners);
    c->listeners = NULL;
    c->n_listeners = 0;
}
