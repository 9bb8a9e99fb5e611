/* database.c — the `database` section into a libpq conninfo string.
 *
 * No section means the embedded PostgreSQL cluster under data_dir. Otherwise
 * we take Synapse's shape, {name: psycopg2, args: {...}}, where args are the
 * keyword arguments psycopg2 hands to libpq: user, password, database (libpq
 * says dbname), host, port, sslmode and friends, plus Synapse's own pool
 * sizes cp_min / cp_max. Keys libpq does not know are warned about here, with
 * their line, instead of failing at the first connection attempt. */
#include <stdlib.h>
#include <string.h>

#include "config_internal.h"

typedef struct cfg_db_raw {
    char *name;
    const cfg_node *args;
    int args_line;
    int connect_retry_seconds;
} cfg_db_raw;

/* libpq's connection keywords (PostgreSQL 17), less "replication": a
 * homeserver never wants a replication connection. */
static const char *const cfg_libpq_keywords[] = {
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
    "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "gssencmode", "sslmode", "sslnegotiation",
    "requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
    "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
    "target_session_attrs", "load_balance_hosts", NULL,
};

static bool cfg_libpq_known(const char *kw) {
    for (const char *const *k = cfg_libpq_keywords; *k; k++)
        if (!strcmp(*k, kw)) return true;
    return false;
}

/* libpq: a value in single quotes, with \ and ' escaped by a backslash. Always
 * quoting keeps spaces, quotes and empty passwords intact. */
int cfg_conninfo_add(char **dsn, const char *keyword, const char *value) {
    size_t have = *dsn ? strlen(*dsn) : 0, vl = strlen(value);
    size_t need = have + 1 + strlen(keyword) + 3 + 2 * vl + 1;
    char *d = realloc(*dsn, need);
    if (!d) return -1;
    char *p = d + have;
    if (have) *p++ = ' ';
    p += sprintf(p, "%s='", keyword);
    for (const char *s = value; *s; s++) {
        if (*s == '\\' || *s == '\'') *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '\'';
    *p = 0;
    *dsn = d;
    return 0;
}

/* libpq takes "5432" or, with several hosts, "5432,5433". */
static bool cfg_db_port_ok(const char *s) {
    for (;;) {
        size_t n = strcspn(s, ",");
        long v = 0;
        if (n < 1 || n > 5 || strspn(s, "0123456789") != n) return false;
        for (size_t i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
        if (v < 1 || v > 65535) return false;
        if (!s[n]) return true;
        s += n + 1;
    }
}

static bool cfg_db_pool(cfg_ctx *x, const cfg_node *v, const char *key, int *out) {
    long long n;
    if (!cfg_get_int(x, v, key, 1, 1000, &n)) return false;
    *out = (int)n;
    return true;
}

/* One connection keyword; false if it was rejected (already reported). */
static bool cfg_db_keyword(cfg_ctx *x, const cfg_node *k, const cfg_node *v, const char *key,
                           char **dsn, bool *have_dbname) {
    const char *kw = !strcmp(k->str, "database") ? "dbname" : k->str;
    char buf[80];
    if (!cfg_libpq_known(kw)) {
        cfg_warning(x, k->line, key, "unknown key (not a libpq connection parameter)");
        return true;
    }
    if (cfg_node_is_null(v)) return true; /* psycopg2 drops None arguments */
    if (!strcmp(kw, "dbname") && *have_dbname) {
        cfg_error(x, k->line, key, "give either database or dbname, not both");
        return false;
    }
    if (v->kind != CFG_SCALAR) {
        cfg_error(x, v->line, key, "expected a string, got %s", cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    if (!strcmp(kw, "port") && !cfg_db_port_ok(v->str)) {
        cfg_error(x, v->line, key, "must be a port number from 1 to 65535, got '%s'", v->str);
        return false;
    }
    *have_dbname |= !strcmp(kw, "dbname");
    if (cfg_conninfo_add(dsn, kw, v->str) < 0) cfg_oom(x, v->line, key);
    return true;
}

static bool cfg_is_uri(const char *s) {
    return !strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11);
}

/* dsn first, then the keywords: libpq lets a later keyword win, as psycopg2
 * lets keyword arguments override its dsn. A URI can't be extended that way. */
static char *cfg_db_join(cfg_ctx *x, const cfg_node *dsn_node, char *kws, const char *key) {
    char dkey[CFG_PATH_MAX], *out = NULL;
    if (!dsn_node) return kws ? kws : strdup("");
    cfg_path_key(dkey, sizeof dkey, key, "dsn");
    if (dsn_node->kind != CFG_SCALAR) {
        cfg_error(x, dsn_node->line, dkey, "expected a libpq connection string");
    } else if (kws && cfg_is_uri(dsn_node->str)) {
        cfg_error(x, dsn_node->line, dkey,
                  "a postgresql:// URI can't be combined with other connection arguments; "
                  "put them in the URI or write the dsn as key=value pairs");
    } else if (asprintf(&out, "%s%s%s", dsn_node->str, kws ? " " : "", kws ? kws : "") < 0) {
        out = NULL;
        cfg_oom(x, dsn_node->line, dkey);
    }
    free(kws);
    return out;
}

static void cfg_db_args(cfg_ctx *x, const cfg_node *args, const char *key, cfg *c) {
    char akey[CFG_PATH_MAX], *kws = NULL;
    const cfg_node *dsn_node = NULL;
    bool have_dbname = false;
    for (size_t i = 0; args && i < args->n; i++) {
        const cfg_node *k = args->keys[i], *v = args->vals[i];
        cfg_path_key(akey, sizeof akey, key, k->str);
        if (!strcmp(k->str, "cp_min")) cfg_db_pool(x, v, akey, &c->db_cp_min);
        else if (!strcmp(k->str, "cp_max")) cfg_db_pool(x, v, akey, &c->db_cp_max);
        else if (!strcmp(k->str, "dsn")) dsn_node = cfg_node_is_null(v) ? NULL : v;
        else cfg_db_keyword(x, k, v, akey, &kws, &have_dbname);
    }
    if (c->db_cp_min > c->db_cp_max) {
        cfg_path_key(akey, sizeof akey, key, "cp_min");
        cfg_error(x, args ? args->line : 0, akey, "is %d, more than cp_max (%d)", c->db_cp_min, c->db_cp_max);
    }
    c->db_dsn = cfg_db_join(x, dsn_node, kws, key);
    if (!c->db_dsn && !dsn_node) cfg_oom(x, args ? args->line : 0, key);
}

static bool cfg_db_keep_args(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base) {
    cfg_db_raw *r = base;
    char buf[80];
    r->args_line = line;
    if (v && v->kind != CFG_MAP) {
        cfg_error(x, v->line, key, "expected a mapping such as {user: synapse, host: localhost}, got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    r->args = v;
    return true;
}

static const cfg_key cfg_db_keys[] = {
    {.name = "name", .type = CFG_T_STR, .off = offsetof(cfg_db_raw, name), .flags = CFG_REQUIRED},
    {.name = "args", .type = CFG_T_CUSTOM, .parse = cfg_db_keep_args},
    /* Ours: how long start-up waits for an unreachable database. */
    {.name = "connect_retry_seconds", .type = CFG_T_INT,
     .off = offsetof(cfg_db_raw, connect_retry_seconds), .def_int = 60, .min = 0, .max = 3600},
    /* Synapse tuning knobs with no counterpart here. */
    {.name = "allow_unsafe_locale", .type = CFG_T_IGNORED},
    {.name = "txn_limit", .type = CFG_T_IGNORED},
    {0},
};

static bool cfg_db_name_ok(cfg_ctx *x, const cfg_node *db, const char *key, const char *name) {
    const cfg_node *nn = cfg_map_get(db, "name");
    char nkey[CFG_PATH_MAX];
    if (!name) return false; /* missing: already reported */
    if (!strcmp(name, "psycopg2") || !strcmp(name, "postgres")) return true;
    cfg_path_key(nkey, sizeof nkey, key, "name");
    if (!strcmp(name, "sqlite3"))
        cfg_error(x, nn->line, nkey, "SQLite is not supported; remove the database section to use "
                                     "the built-in PostgreSQL, or use psycopg2 with args");
    else
        cfg_error(x, nn->line, nkey, "must be psycopg2 (PostgreSQL), got '%s'", name);
    return false;
}

bool cfg_parse_database(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base) {
    cfg *c = base;
    char buf[80];
    c->db_cp_min = 5;
    c->db_cp_max = 10;
    c->db_connect_retry_s = 60;
    c->db_embedded = v == NULL;
    if (!v) return true;
    if (v->kind != CFG_MAP) {
        cfg_error(x, v->line, key, "expected a mapping such as {name: psycopg2, args: {...}}, got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    cfg_db_raw r = {0};
    int before = x->n_errors;
    cfg_apply_table(x, cfg_db_keys, v, line, key, &r, true);
    char akey[CFG_PATH_MAX];
    cfg_path_key(akey, sizeof akey, key, "args");
    if (cfg_db_name_ok(x, v, key, r.name)) cfg_db_args(x, r.args, akey, c);
    c->db_connect_retry_s = r.connect_retry_seconds;
    cfg_table_free(cfg_db_keys, &r);
    return x->n_errors == before;
}
