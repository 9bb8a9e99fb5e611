/* config_internal.h — what the config/ files share and nothing else includes.
 *
 * The loader works in three steps: yaml_tree.c turns the file into a small tree
 * of cfg_node that remembers line numbers; schema.c walks that tree against
 * tables of keys (cfg_key rows) that convert values into the cfg struct;
 * load.c fills the defaults that depend on other keys and checks the keys
 * that only make sense together. Every problem goes through diag.c so all of
 * them are reported in one run. */
#ifndef CFG_CONFIG_INTERNAL_H
#define CFG_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

/* ---- the YAML tree (yaml_tree.c) ---- */

typedef enum { CFG_SCALAR, CFG_MAP, CFG_SEQ } cfg_kind;

typedef struct cfg_node {
    cfg_kind kind;
    int line;               /* 1-based line of the node in the file */
    char *str;              /* CFG_SCALAR: the text */
    bool plain;             /* CFG_SCALAR: unquoted, so YAML typing applies */
    size_t n;               /* CFG_MAP: pairs; CFG_SEQ: items */
    struct cfg_node **keys; /* CFG_MAP: scalar keys, in file order */
    struct cfg_node **vals; /* CFG_MAP: values; CFG_SEQ: items */
} cfg_node;

/* The state of one cfg_load run, handed to everything that may complain. */
typedef struct cfg_ctx {
    const char *file; /* as the caller named it, for diagnostics */
    char *dir;        /* absolute folder of the file: relative paths start here */
    FILE *diag;
    int n_errors, n_warnings;
} cfg_ctx;

/* Parse path. Returns the root (an empty mapping for an empty file), or NULL
 * after reporting a syntax or I/O error. */
cfg_node *cfg_yaml_load(cfg_ctx *x, const char *path);
void cfg_node_free(cfg_node *n);
const cfg_node *cfg_map_get(const cfg_node *map, const char *key);
/* Plain ~, null, Null, NULL or nothing at all: "use the default". */
bool cfg_node_is_null(const cfg_node *n);

/* ---- diagnostics (diag.c) ---- */

void cfg_error(cfg_ctx *x, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cfg_warning(cfg_ctx *x, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cfg_oom(cfg_ctx *x, int line, const char *key);
/* "prefix.name" (or "name" at the top) and "prefix[i]", truncated to size. */
void cfg_path_key(char *buf, size_t size, const char *prefix, const char *name);
void cfg_path_index(char *buf, size_t size, const char *prefix, size_t i);
/* How a value looks in a message: 'text' (shortened), "a mapping", "a list". */
const char *cfg_node_what(const cfg_node *n, char *buf, size_t size);

#define CFG_PATH_MAX 256

/* ---- value conversion (convert.c); false means an error was reported ---- */

/* A plain YAML 1.1 boolean (true/yes/on …), reporting nothing if it is not one. */
bool cfg_bool_value(const cfg_node *v, bool *out);
bool cfg_get_bool(cfg_ctx *x, const cfg_node *v, const char *key, bool *out);
bool cfg_get_int(cfg_ctx *x, const cfg_node *v, const char *key, long long min,
                 long long max, long long *out);
bool cfg_get_number(cfg_ctx *x, const cfg_node *v, const char *key, double min, double *out);
bool cfg_get_size(cfg_ctx *x, const cfg_node *v, const char *key, long long *out);
/* A duration in milliseconds: "30s", "5m", "1h", "28d", "1w", "1y" or plain ms. */
bool cfg_get_duration(cfg_ctx *x, const cfg_node *v, const char *key, long long *out);
/* Replace *out (freeing the old value) with the scalar's text. */
bool cfg_get_string(cfg_ctx *x, const cfg_node *v, const char *key, char **out);
/* Like cfg_get_string, then resolved against the config file's folder. */
bool cfg_get_path(cfg_ctx *x, const cfg_node *v, const char *key, char **out);
/* A list of scalars into a fresh list (paths resolved when paths is true). */
bool cfg_get_strlist(cfg_ctx *x, const cfg_node *v, const char *key, bool paths,
                     cfg_strlist *out);

/* Parse "50M" / "1G" / "100K" / "1234" into bytes; false if malformed. */
bool cfg_parse_size(const char *s, long long *out);
/* Parse Synapse's durations ("5m", "28d", "1500") into milliseconds. */
bool cfg_parse_duration(const char *s, long long *out);
char *cfg_resolve_path(const char *dir, const char *p); /* NULL on OOM */
int cfg_strlist_push(cfg_strlist *l, const char *s);   /* 0 or -1 on OOM */
void cfg_strlist_free(cfg_strlist *l);

/* ---- validators (validate.c) ---- */

/* A Matrix server name: hostname / IPv4 / [IPv6], optional :port. On false,
 * *why says what is wrong. */
bool cfg_server_name_valid(const char *s, const char **why);
/* The host part of a valid server name, without the port (brackets kept). */
char *cfg_server_name_host(const char *s);
bool cfg_ip_literal_valid(const char *s);
/* "addr/len" or a bare address, IPv4 or IPv6. */
bool cfg_cidr_valid(const char *s, const char **why);
bool cfg_file_readable(cfg_ctx *x, int line, const char *key, const char *path);

/* ---- the schema (schema.c) ---- */

typedef enum {
    CFG_T_STR,       /* char *; any scalar */
    CFG_T_PATH,      /* char *; resolved against the config's folder */
    CFG_T_BOOL,      /* bool */
    CFG_T_INT,       /* int within [min, max] */
    CFG_T_NUM,       /* double >= 0 */
    CFG_T_SIZE,      /* long long bytes, "50M" style accepted */
    CFG_T_DURATION,  /* long long milliseconds, "5m" / "28d" style accepted */
    CFG_T_STRLIST,   /* cfg_strlist */
    CFG_T_PATHLIST,  /* cfg_strlist of resolved paths */
    CFG_T_RATELIMIT, /* cfg_ratelimit: {per_second, burst_count} */
    CFG_T_SECTION,   /* a mapping whose keys are the rows in .sub (same base) */
    CFG_T_CUSTOM,    /* .parse does it all, also when the key is absent */
    CFG_T_IGNORED,   /* accepted for Synapse compatibility, no effect */
} cfg_type;

#define CFG_REQUIRED 1u /* missing or null is an error */
#define CFG_HAS 2u      /* set the bool at .has_off when the key is given */

/* Called after a value is converted into *field; may normalise it. Returns
 * false after reporting an error. */
typedef bool (*cfg_check_fn)(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
/* Parses the key's value into base; v is NULL when the key is absent or null. */
typedef bool (*cfg_parse_fn)(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                             void *base);

typedef struct cfg_key {
    const char *name;
    cfg_type type;
    size_t off;                  /* where the value lives in base */
    unsigned flags;
    size_t has_off;              /* CFG_HAS */
    const char *def_str;         /* STR, PATH */
    const char *const *def_list; /* STRLIST, PATHLIST; NULL-terminated */
    double def_num;              /* NUM; RATELIMIT per_second */
    long long def_int;           /* BOOL, INT, SIZE, DURATION; RATELIMIT burst_count */
    long long min, max;          /* INT, SIZE, DURATION (max 0: no upper bound) */
    const struct cfg_key *sub;   /* SECTION; terminated by a row with name NULL */
    cfg_check_fn check;
    cfg_parse_fn parse;          /* CUSTOM */
    const char *alias_of;        /* an old name of another row: both given is an error */
} cfg_key;

/* Set every row's default (when defaults is true), then convert the keys of
 * map into base. map may be NULL (the whole section absent); map_line is where
 * "missing key" errors point. */
void cfg_apply_table(cfg_ctx *x, const cfg_key *table, const cfg_node *map, int map_line,
                     const char *prefix, void *base, bool defaults);
void cfg_table_free(const cfg_key *table, void *base);

extern const cfg_key cfg_top_keys[];

/* Row checks used by the top-level table (validate.c). */
bool cfg_check_server_name(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_log_level(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_room_version(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_public_baseurl(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_cidrs(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_server_names(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_ip_literals(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_files(cfg_ctx *x, const cfg_node *v, const char *key, void *field);
bool cfg_check_sender_shard(cfg_ctx *x, const cfg_node *v, const char *key, void *field);

/* ---- sections with their own code ---- */

bool cfg_parse_listeners(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base);
void cfg_listeners_free(cfg *c);
bool cfg_parse_database(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base);
bool cfg_parse_key_servers(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base);
/* Notaries without verify_keys are trusted through TLS alone: refused when
 * federation_verify_certificates is false (as Synapse does). */
void cfg_check_key_servers(cfg_ctx *x, const cfg *c, const cfg_node *root);
void cfg_key_servers_free(cfg *c);
/* channels.c: encryption_enabled_by_default_for_room_type and
 * room_list_publication_rules. */
bool cfg_parse_encryption_default(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                                  void *base);
bool cfg_parse_room_rules(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base);
void cfg_channels_free(cfg *c);
/* media.c: thumbnail_sizes, media_upload_limits and url_preview_url_blacklist
 * (lists of mappings). */
bool cfg_parse_thumbnail_sizes(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                               void *base);
bool cfg_parse_media_upload_limits(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                                   void *base);
bool cfg_parse_url_blacklist(cfg_ctx *x, const cfg_node *v, const char *key, int line,
                             void *base);
void cfg_media_free(cfg *c);
/* Append value to a libpq conninfo string as keyword='value' with libpq's
 * quoting (exposed for the tests through the DSN they produce). */
int cfg_conninfo_add(char **dsn, const char *keyword, const char *value);

/* The built-in IP range blacklist (Synapse's default list). */
extern const char *const cfg_default_ip_blacklist[];

#endif
