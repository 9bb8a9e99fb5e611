/* convert.c — YAML values into C values, with YAML 1.1 typing as PyYAML (and so
 * Synapse) reads it: unquoted true/yes/on are booleans, unquoted digits are
 * numbers, and a quoted value is always a string. A value of the wrong type is
 * reported with its key and line and leaves the target untouched. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

static bool cfg_in(const char *s, const char *const *set) {
    for (; *set; set++)
        if (!strcmp(s, *set)) return true;
    return false;
}

/* Quoting a number or boolean is the most common type mistake; say so. */
static const char *cfg_quote_hint(const cfg_node *v) {
    return v->kind == CFG_SCALAR && !v->plain ? " (remove the quotes)" : "";
}

bool cfg_bool_value(const cfg_node *v, bool *out) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES",
                                      "on", "On", "ON", NULL};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO",
                                     "off", "Off", "OFF", NULL};
    if (v->kind != CFG_SCALAR || !v->plain) return false;
    if (cfg_in(v->str, yes)) return *out = true, true;
    if (cfg_in(v->str, no)) return *out = false, true;
    return false;
}

bool cfg_get_bool(cfg_ctx *x, const cfg_node *v, const char *key, bool *out) {
    char buf[80];
    if (cfg_bool_value(v, out)) return true;
    cfg_error(x, v->line, key, "expected true or false, got %s%s", cfg_node_what(v, buf, sizeof buf),
              cfg_quote_hint(v));
    return false;
}

/* Decimal only: YAML 1.1's octal and sexagesimal forms surprise more than help. */
static bool cfg_parse_ll(const char *s, long long *out) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (*p < '0' || *p > '9') return false;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = n;
    return true;
}

bool cfg_get_int(cfg_ctx *x, const cfg_node *v, const char *key, long long min,
                 long long max, long long *out) {
    char buf[80];
    long long n;
    if (v->kind != CFG_SCALAR || !v->plain || !cfg_parse_ll(v->str, &n)) {
        cfg_error(x, v->line, key, "expected a whole number, got %s%s",
                  cfg_node_what(v, buf, sizeof buf), cfg_quote_hint(v));
        return false;
    }
    if (n < min || n > max) {
        cfg_error(x, v->line, key, "must be between %lld and %lld, got %lld", min, max, n);
        return false;
    }
    *out = n;
    return true;
}

bool cfg_get_number(cfg_ctx *x, const cfg_node *v, const char *key, double min, double *out) {
    char buf[80];
    const char *s = v->str;
    bool ok = v->kind == CFG_SCALAR && v->plain && *s &&
              strspn(s, "0123456789.eE+-") == strlen(s);
    char *end = NULL;
    double d = ok ? strtod(s, &end) : 0;
    if (!ok || *end || !isfinite(d)) {
        cfg_error(x, v->line, key, "expected a number, got %s%s", cfg_node_what(v, buf, sizeof buf),
                  cfg_quote_hint(v));
        return false;
    }
    if (d < min) {
        cfg_error(x, v->line, key, "must be at least %g, got %g", min, d);
        return false;
    }
    *out = d;
    return true;
}

/* Synapse's parse_size: a byte count, or digits with K, M, G or T (powers of
 * 1024). Lower-case suffixes are accepted too: nobody means anything else. */
bool cfg_parse_size(const char *s, long long *out) {
    size_t len = strlen(s);
    long long mult = 1;
    if (len > 1) {
        switch (s[len - 1]) {
        case 'K': case 'k': mult = 1LL << 10; break;
        case 'M': case 'm': mult = 1LL << 20; break;
        case 'G': case 'g': mult = 1LL << 30; break;
        case 'T': case 't': mult = 1LL << 40; break;
        default: break;
        }
    }
    char digits[32];
    size_t n = mult == 1 ? len : len - 1;
    if (n == 0 || n >= sizeof digits || strspn(s, "0123456789") != n) return false;
    memcpy(digits, s, n);
    digits[n] = 0;
    long long v;
    if (!cfg_parse_ll(digits, &v) || v > LLONG_MAX / mult) return false;
    *out = v * mult;
    return true;
}

bool cfg_get_size(cfg_ctx *x, const cfg_node *v, const char *key, long long *out) {
    char buf[80];
    if (v->kind != CFG_SCALAR || !cfg_parse_size(v->str, out)) {
        cfg_error(x, v->line, key, "expected a size such as 50M, 1G, 100K or a number of bytes, got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    return true;
}

/* Synapse's parse_duration: a whole number of milliseconds, or digits with
 * s, m, h, d, w or y (a year is 365 days). */
bool cfg_parse_duration(const char *s, long long *out) {
    static const struct { char suffix; long long ms; } units[] = {
        {'s', 1000LL}, {'m', 60000LL}, {'h', 3600000LL}, {'d', 86400000LL},
        {'w', 604800000LL}, {'y', 31536000000LL},
    };
    size_t len = strlen(s);
    long long mult = 1;
    for (size_t i = 0; len > 1 && i < sizeof units / sizeof *units; i++)
        if (s[len - 1] == units[i].suffix) mult = units[i].ms;
    char digits[32];
    size_t n = mult == 1 ? len : len - 1;
    if (n == 0 || n >= sizeof digits || strspn(s, "0123456789") != n) return false;
    memcpy(digits, s, n);
    digits[n] = 0;
    long long v;
    if (!cfg_parse_ll(digits, &v) || v > LLONG_MAX / mult) return false;
    *out = v * mult;
    return true;
}

bool cfg_get_duration(cfg_ctx *x, const cfg_node *v, const char *key, long long *out) {
    char buf[80];
    if (v->kind != CFG_SCALAR || !cfg_parse_duration(v->str, out)) {
        cfg_error(x, v->line, key,
                  "expected a duration such as 30s, 5m, 1h, 28d or a number of milliseconds, got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    return true;
}

bool cfg_get_string(cfg_ctx *x, const cfg_node *v, const char *key, char **out) {
    char buf[80];
    if (v->kind != CFG_SCALAR) {
        cfg_error(x, v->line, key, "expected a string, got %s", cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    char *s = strdup(v->str);
    if (!s) {
        cfg_oom(x, v->line, key);
        return false;
    }
    free(*out);
    *out = s;
    return true;
}

char *cfg_resolve_path(const char *dir, const char *p) {
    if (p[0] == '/') return strdup(p);
    while (p[0] == '.' && p[1] == '/') p += 2;
    char *r = NULL;
    if (!*p) p = ".";
    if (!strcmp(p, ".")) return strdup(dir);
    const char *sep = dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/";
    return asprintf(&r, "%s%s%s", dir, sep, p) < 0 ? NULL : r;
}

bool cfg_get_path(cfg_ctx *x, const cfg_node *v, const char *key, char **out) {
    char buf[80];
    if (v->kind != CFG_SCALAR || !*v->str) {
        cfg_error(x, v->line, key, "expected a file or folder path, got %s",
                  v->kind == CFG_SCALAR ? "an empty string" : cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    char *s = cfg_resolve_path(x->dir, v->str);
    if (!s) {
        cfg_oom(x, v->line, key);
        return false;
    }
    free(*out);
    *out = s;
    return true;
}

int cfg_strlist_push(cfg_strlist *l, const char *s) {
    char *d = strdup(s);
    char **v = d ? realloc(l->v, (l->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(d);
        return -1;
    }
    l->v = v;
    l->v[l->n++] = d;
    return 0;
}

void cfg_strlist_free(cfg_strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static bool cfg_get_item(cfg_ctx *x, const cfg_node *it, const char *key, bool paths,
                         cfg_strlist *out) {
    char *s = NULL;
    bool ok = cfg_node_is_null(it)
                  ? (cfg_error(x, it->line, key, "an entry of the list is empty"), false)
                  : paths ? cfg_get_path(x, it, key, &s) : cfg_get_string(x, it, key, &s);
    if (ok && cfg_strlist_push(out, s) < 0) {
        cfg_oom(x, it->line, key);
        ok = false;
    }
    free(s);
    return ok;
}

bool cfg_get_strlist(cfg_ctx *x, const cfg_node *v, const char *key, bool paths,
                     cfg_strlist *out) {
    char buf[80], ikey[CFG_PATH_MAX];
    *out = (cfg_strlist){0};
    if (v->kind != CFG_SEQ) {
        cfg_error(x, v->line, key, "expected a list such as ['a', 'b'], got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        cfg_path_index(ikey, sizeof ikey, key, i);
        if (!cfg_get_item(x, v->vals[i], ikey, paths, out)) ok = false;
    }
    if (!ok) cfg_strlist_free(out);
    return ok;
}
