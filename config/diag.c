/* diag.c — config problems as one line each, "<file>:<line>: error: <key>: <what>",
 * the shape compilers use so editors can jump to the line. Problems are
 * counted, not fatal, so one run of cfg_load reports all of them. */
#include <stdarg.h>
#include <string.h>

#include "config_internal.h"

/* A value quoted from the file may hold newlines or escapes; a diagnostic must
 * stay one line and must not let the file write to the admin's terminal. */
static void cfg_sanitize(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

static void cfg_emit(cfg_ctx *x, int line, const char *kind, const char *key,
                     const char *fmt, va_list ap) {
    if (!x->diag) return;
    char msg[1024], out[1400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(out, sizeof out, "%s:%d: %s: %s: %s", x->file, line, kind, key, msg);
    cfg_sanitize(out);
    fprintf(x->diag, "%s\n", out);
}

void cfg_error(cfg_ctx *x, int line, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cfg_emit(x, line, "error", key, fmt, ap);
    va_end(ap);
    x->n_errors++;
}

void cfg_warning(cfg_ctx *x, int line, const char *key, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    cfg_emit(x, line, "warning", key, fmt, ap);
    va_end(ap);
    x->n_warnings++;
}

void cfg_oom(cfg_ctx *x, int line, const char *key) {
    cfg_error(x, line, key, "out of memory");
}

void cfg_path_key(char *buf, size_t size, const char *prefix, const char *name) {
    if (prefix && *prefix)
        snprintf(buf, size, "%s.%s", prefix, name);
    else
        snprintf(buf, size, "%s", name);
}

void cfg_path_index(char *buf, size_t size, const char *prefix, size_t i) {
    snprintf(buf, size, "%s[%zu]", prefix, i);
}

const char *cfg_node_what(const cfg_node *n, char *buf, size_t size) {
    if (!n) return "nothing";
    if (n->kind == CFG_MAP) return "a mapping";
    if (n->kind == CFG_SEQ) return "a list";
    if (strlen(n->str) > 60)
        snprintf(buf, size, "'%.57s...'", n->str);
    else
        snprintf(buf, size, "'%s'", n->str);
    return buf;
}
