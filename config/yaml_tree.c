/* yaml_tree.c — a YAML file as a small tree of cfg_node that keeps line numbers.
 *
 * libyaml's document loader does the parsing; we copy its nodes into our own
 * tree so the schema code sees plain strings, knows which scalars were quoted
 * (quoted "8008" is a string, not a port) and can name the line of every value.
 * Aliases are expanded while copying, so the copy is bounded in depth and size
 * to keep "billion laughs" documents and self-referencing anchors harmless. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "config_internal.h"

#define CFG_MAX_DEPTH 64
#define CFG_MAX_NODES 100000

typedef struct cfg_build {
    cfg_ctx *x;
    yaml_document_t *doc;
    size_t count;
} cfg_build;

static cfg_node *cfg_node_new(cfg_kind kind, int line) {
    cfg_node *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = line;
    }
    return n;
}

void cfg_node_free(cfg_node *n) {
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys) cfg_node_free(n->keys[i]);
        cfg_node_free(n->vals[i]);
    }
    free(n->keys);
    free(n->vals);
    free(n->str);
    free(n);
}

static cfg_node *cfg_build_node(cfg_build *b, yaml_node_t *yn, int depth);

static cfg_node *cfg_build_scalar(cfg_build *b, yaml_node_t *yn, int line) {
    const char *v = (const char *)yn->data.scalar.value;
    size_t len = yn->data.scalar.length;
    /* A "\0" escape would silently cut the value short in C strings. */
    if (memchr(v, 0, len)) {
        cfg_error(b->x, line, "yaml", "a value contains a NUL character");
        return NULL;
    }
    cfg_node *n = cfg_node_new(CFG_SCALAR, line);
    if (!n || !(n->str = strndup(v, len))) {
        cfg_oom(b->x, line, "yaml");
        free(n);
        return NULL;
    }
    n->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return n;
}

static bool cfg_map_has(const cfg_node *map, const char *key) {
    return cfg_map_get(map, key) != NULL;
}

/* Adds one key/value pair to map; false (after reporting) drops the pair. */
static bool cfg_build_pair(cfg_build *b, cfg_node *map, yaml_node_pair_t *p, int depth) {
    yaml_node_t *yk = yaml_document_get_node(b->doc, p->key);
    yaml_node_t *yv = yaml_document_get_node(b->doc, p->value);
    if (!yk || !yv) return false;
    int kline = (int)yk->start_mark.line + 1;
    if (yk->type != YAML_SCALAR_NODE) {
        cfg_error(b->x, kline, "yaml", "a key must be a plain string, not a mapping or list");
        return false;
    }
    cfg_node *k = cfg_build_scalar(b, yk, kline);
    if (!k) return false;
    if (cfg_map_has(map, k->str)) {
        cfg_error(b->x, kline, k->str, "duplicate key (an earlier line already sets it)");
        cfg_node_free(k);
        return false;
    }
    cfg_node *v = cfg_build_node(b, yv, depth + 1);
    if (!v) {
        cfg_node_free(k);
        return false;
    }
    /* "key:" with nothing after it is null; point at the key, not the next line. */
    if (v->kind == CFG_SCALAR && !*v->str) v->line = kline;
    map->keys[map->n] = k;
    map->vals[map->n++] = v;
    return true;
}

static cfg_node *cfg_build_map(cfg_build *b, yaml_node_t *yn, int line, int depth) {
    cfg_node *n = cfg_node_new(CFG_MAP, line);
    size_t cap = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    if (!n || (cap && (!(n->keys = calloc(cap, sizeof *n->keys)) ||
                       !(n->vals = calloc(cap, sizeof *n->vals))))) {
        cfg_oom(b->x, line, "yaml");
        cfg_node_free(n);
        return NULL;
    }
    bool ok = true;
    for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top; p++)
        if (!cfg_build_pair(b, n, p, depth)) ok = false;
    /* Keep the rest of the mapping after a bad pair, so later keys are still
     * checked, unless the tree itself is unusable (too big or deep). */
    if (!ok && b->count > CFG_MAX_NODES) {
        cfg_node_free(n);
        return NULL;
    }
    return n;
}

static cfg_node *cfg_build_seq(cfg_build *b, yaml_node_t *yn, int line, int depth) {
    cfg_node *n = cfg_node_new(CFG_SEQ, line);
    size_t cap = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
    if (!n || (cap && !(n->vals = calloc(cap, sizeof *n->vals)))) {
        cfg_oom(b->x, line, "yaml");
        cfg_node_free(n);
        return NULL;
    }
    for (yaml_node_item_t *i = yn->data.sequence.items.start; i < yn->data.sequence.items.top; i++) {
        yaml_node_t *yi = yaml_document_get_node(b->doc, *i);
        cfg_node *v = yi ? cfg_build_node(b, yi, depth + 1) : NULL;
        if (!v) {
            cfg_node_free(n);
            return NULL;
        }
        n->vals[n->n++] = v;
    }
    return n;
}

static cfg_node *cfg_build_node(cfg_build *b, yaml_node_t *yn, int depth) {
    int line = (int)yn->start_mark.line + 1;
    if (depth > CFG_MAX_DEPTH || ++b->count > CFG_MAX_NODES) {
        if (b->count <= CFG_MAX_NODES + 1)
            cfg_error(b->x, line, "yaml", "document too deep or too large (aliases?)");
        b->count = CFG_MAX_NODES + 2;
        return NULL;
    }
    switch (yn->type) {
    case YAML_SCALAR_NODE: return cfg_build_scalar(b, yn, line);
    case YAML_MAPPING_NODE: return cfg_build_map(b, yn, line, depth);
    case YAML_SEQUENCE_NODE: return cfg_build_seq(b, yn, line, depth);
    default: return NULL;
    }
}

static void cfg_report_parser(cfg_ctx *x, const yaml_parser_t *p) {
    const yaml_mark_t *m = p->error == YAML_READER_ERROR ? &p->mark : &p->problem_mark;
    const char *problem = p->problem ? p->problem : "cannot parse the file";
    if (p->context)
        cfg_error(x, (int)m->line + 1, "yaml", "%s (%s at line %d)", problem, p->context,
                  (int)p->context_mark.line + 1);
    else
        cfg_error(x, (int)m->line + 1, "yaml", "%s", problem);
}

static FILE *cfg_open(cfg_ctx *x, const char *path) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f) {
        cfg_error(x, 0, "config", "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        cfg_error(x, 0, "config", "%s is a directory, not a file", path);
        fclose(f);
        return NULL;
    }
    return f;
}

static cfg_node *cfg_from_document(cfg_ctx *x, yaml_document_t *doc) {
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root) {
        cfg_node *n = cfg_node_new(CFG_MAP, 1); /* an empty file: no keys */
        if (!n) cfg_oom(x, 1, "yaml");
        return n;
    }
    if (root->type != YAML_MAPPING_NODE) {
        cfg_error(x, (int)root->start_mark.line + 1, "config",
                  "the file must be a mapping of keys to values");
        return NULL;
    }
    cfg_build b = {.x = x, .doc = doc};
    int before = x->n_errors;
    cfg_node *n = cfg_build_node(&b, root, 0);
    if (n && x->n_errors != before && b.count > CFG_MAX_NODES) {
        cfg_node_free(n);
        n = NULL;
    }
    return n;
}

cfg_node *cfg_yaml_load(cfg_ctx *x, const char *path) {
    FILE *f = cfg_open(x, path);
    if (!f) return NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    cfg_node *root = NULL;
    if (!yaml_parser_initialize(&parser)) {
        cfg_oom(x, 0, "yaml");
        fclose(f);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        cfg_report_parser(x, &parser);
    } else {
        root = cfg_from_document(x, &doc);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return root;
}

const cfg_node *cfg_map_get(const cfg_node *map, const char *key) {
    if (!map || map->kind != CFG_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i]->str, key)) return map->vals[i];
    return NULL;
}

bool cfg_node_is_null(const cfg_node *n) {
    if (!n) return true;
    if (n->kind != CFG_SCALAR || !n->plain) return false;
    const char *s = n->str;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}
