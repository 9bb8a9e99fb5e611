/* media.c — the media keys that are lists of mappings: thumbnail_sizes,
 * media_upload_limits and url_preview_url_blacklist, in Synapse's shapes
 *   thumbnail_sizes: [{width: 32, height: 32, method: crop}, ...]
 *   media_upload_limits: [{time_period: 1d, max_size: 100M}, ...]
 *   url_preview_url_blacklist: [{netloc: '*.example.com', path: '/foo*'}, ...]
 * Each item goes through a small key table, so every problem is reported with
 * its line like any other key. */
#include <limits.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

/* Synapse's DEFAULT_THUMBNAIL_SIZES, which are also the spec's suggestion. */
static const cfg_thumbnail_size cfg_default_thumbs[] = {
    {32, 32, true}, {96, 96, true}, {320, 240, false}, {640, 480, false}, {800, 600, false},
};

typedef struct cfg_thumb_raw {
    int width, height;
    char *method;
} cfg_thumb_raw;

static const cfg_key cfg_thumb_keys[] = {
    {.name = "width", .type = CFG_T_INT, .off = offsetof(cfg_thumb_raw, width),
     .flags = CFG_REQUIRED, .min = 1, .max = 10000},
    {.name = "height", .type = CFG_T_INT, .off = offsetof(cfg_thumb_raw, height),
     .flags = CFG_REQUIRED, .min = 1, .max = 10000},
    {.name = "method", .type = CFG_T_STR, .off = offsetof(cfg_thumb_raw, method),
     .flags = CFG_REQUIRED},
    {0},
};

static bool cfg_set_default_thumbs(cfg *c) {
    size_t n = sizeof cfg_default_thumbs / sizeof *cfg_default_thumbs;
    c->thumbnail_sizes = malloc(sizeof cfg_default_thumbs);
    if (!c->thumbnail_sizes) return false;
    memcpy(c->thumbnail_sizes, cfg_default_thumbs, sizeof cfg_default_thumbs);
    c->n_thumbnail_sizes = n;
    return true;
}

/* The list a value must be; reports anything else. */
static bool cfg_expect_seq(cfg_ctx *x, const cfg_node *v, const char *key, const char *example) {
    char buf[80];
    if (v->kind == CFG_SEQ) return true;
    cfg_error(x, v->line, key, "expected a list such as %s, got %s", example,
              cfg_node_what(v, buf, sizeof buf));
    return false;
}

bool cfg_parse_thumbnail_sizes(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                               void *base) {
    cfg *c = base;
    char ikey[CFG_PATH_MAX];
    (void)line;
    if (!v) return cfg_set_default_thumbs(c) || (cfg_oom(x, 0, key), false);
    if (!cfg_expect_seq(x, v, key, "[{width: 32, height: 32, method: crop}]")) return false;
    c->thumbnail_sizes = calloc(v->n ? v->n : 1, sizeof *c->thumbnail_sizes);
    if (!c->thumbnail_sizes) return cfg_oom(x, v->line, key), false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const cfg_node *item = v->vals[i];
        cfg_thumb_raw raw = {0};
        int before = x->n_errors;
        cfg_path_index(ikey, sizeof ikey, key, i);
        if (item->kind != CFG_MAP) {
            cfg_error(x, item->line, ikey, "expected a mapping with width, height and method");
            ok = false;
            continue;
        }
        cfg_apply_table(x, cfg_thumb_keys, item, item->line, ikey, &raw, true);
        if (raw.method && strcmp(raw.method, "crop") && strcmp(raw.method, "scale")) {
            char mkey[CFG_PATH_MAX];
            cfg_path_key(mkey, sizeof mkey, ikey, "method");
            cfg_error(x, cfg_map_get(item, "method")->line, mkey,
                      "must be crop or scale, got '%s'", raw.method);
        }
        if (x->n_errors == before)
            c->thumbnail_sizes[c->n_thumbnail_sizes++] =
                (cfg_thumbnail_size){raw.width, raw.height, !strcmp(raw.method, "crop")};
        else
            ok = false;
        cfg_table_free(cfg_thumb_keys, &raw);
    }
    return ok;
}

static const cfg_key cfg_limit_keys[] = {
    {.name = "time_period", .type = CFG_T_DURATION, .off = offsetof(cfg_upload_limit, time_period),
     .flags = CFG_REQUIRED, .min = 1},
    {.name = "max_size", .type = CFG_T_SIZE, .off = offsetof(cfg_upload_limit, max_size),
     .flags = CFG_REQUIRED, .min = 1},
    {0},
};

bool cfg_parse_media_upload_limits(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                                   void *base) {
    cfg *c = base;
    char ikey[CFG_PATH_MAX];
    (void)line;
    if (!v) return true; /* no limits */
    if (!cfg_expect_seq(x, v, key, "[{time_period: 1d, max_size: 1G}]")) return false;
    c->media_upload_limits = calloc(v->n ? v->n : 1, sizeof *c->media_upload_limits);
    if (!c->media_upload_limits) return cfg_oom(x, v->line, key), false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const cfg_node *item = v->vals[i];
        cfg_upload_limit lim = {0};
        int before = x->n_errors;
        cfg_path_index(ikey, sizeof ikey, key, i);
        if (item->kind != CFG_MAP) {
            cfg_error(x, item->line, ikey, "expected a mapping with time_period and max_size");
            ok = false;
            continue;
        }
        cfg_apply_table(x, cfg_limit_keys, item, item->line, ikey, &lim, true);
        if (x->n_errors == before) c->media_upload_limits[c->n_media_upload_limits++] = lim;
        else ok = false;
    }
    return ok;
}

const char *const cfg_url_parts[CFG_URL_NPARTS] = {
    "scheme", "netloc", "path", "query", "fragment", "username", "password", "hostname", "port",
};

/* One entry: a mapping from components to patterns, each regex compiled
 * once here so a bad one is reported with its line. */
static bool parse_url_rule(cfg_ctx *x, const cfg_node *item, const char *key, cfg_url_rule *r) {
    char ikey[CFG_PATH_MAX], buf[80];
    if (item->kind != CFG_MAP) {
        cfg_error(x, item->line, key, "expected a mapping such as {netloc: '*.example.com'}, got %s",
                  cfg_node_what(item, buf, sizeof buf));
        return false;
    }
    if (item->n == 0)
        cfg_warning(x, item->line, key, "an empty entry matches every URL: nothing is previewed");
    bool ok = true;
    for (size_t i = 0; i < item->n; i++) {
        const char *name = item->keys[i]->str;
        cfg_path_key(ikey, sizeof ikey, key, name);
        int part = -1;
        for (int p = 0; p < CFG_URL_NPARTS; p++)
            if (!strcmp(name, cfg_url_parts[p])) part = p;
        if (part < 0) {
            cfg_error(x, item->keys[i]->line, ikey, "not a URL component (scheme, netloc, path, "
                      "query, fragment, username, password, hostname or port)");
            ok = false;
            continue;
        }
        const cfg_node *v = item->vals[i];
        if (v->kind != CFG_SCALAR) {
            cfg_error(x, v->line, ikey, "expected a pattern, got %s", cfg_node_what(v, buf, sizeof buf));
            ok = false;
            continue;
        }
        free(r->pattern[part]);
        if (!(r->pattern[part] = strdup(v->str))) return cfg_oom(x, v->line, ikey), false;
        regex_t re;
        int rc = v->str[0] == '^' ? regcomp(&re, v->str, REG_EXTENDED | REG_NOSUB) : 0;
        if (rc) {
            char msg[128];
            regerror(rc, &re, msg, sizeof msg);
            cfg_error(x, v->line, ikey, "not a POSIX extended regular expression: %s", msg);
            ok = false;
        } else if (v->str[0] == '^') {
            regfree(&re);
        }
    }
    return ok;
}

static void url_rules_free(cfg_url_rule *rules, size_t n) {
    for (size_t i = 0; i < n; i++)
        for (int p = 0; p < CFG_URL_NPARTS; p++) free(rules[i].pattern[p]);
    free(rules);
}

bool cfg_parse_url_blacklist(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                             void *base) {
    cfg *c = base;
    char ikey[CFG_PATH_MAX];
    (void)line;
    if (!v || cfg_node_is_null(v)) return true; /* no patterns */
    if (!cfg_expect_seq(x, v, key, "[{netloc: '*.example.com'}]")) return false;
    cfg_url_rule *rules = calloc(v->n ? v->n : 1, sizeof *rules);
    if (!rules) return cfg_oom(x, v->line, key), false;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        cfg_path_index(ikey, sizeof ikey, key, i);
        ok &= parse_url_rule(x, v->vals[i], ikey, &rules[i]);
    }
    if (!ok) {
        url_rules_free(rules, v->n);
        return false;
    }
    c->url_preview_url_blacklist = rules;
    c->n_url_preview_url_blacklist = v->n;
    return true;
}

void cfg_media_free(cfg *c) {
    url_rules_free(c->url_preview_url_blacklist, c->n_url_preview_url_blacklist);
    c->url_preview_url_blacklist = NULL;
    c->n_url_preview_url_blacklist = 0;
    free(c->thumbnail_sizes);
    c->thumbnail_sizes = NULL;
    free(c->media_upload_limits);
    c->media_upload_limits = NULL;
}
