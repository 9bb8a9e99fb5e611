/* json_canon.c — canonical JSON, the exact bytes Matrix hashes and signs.
 *
 * Written by hand rather than with json_dumps: jansson's escapes differ from
 * the ones the spec and every other homeserver use (Python's json with
 * ensure_ascii=False): it writes "\u001F" where they write "\u001f", and it
 * would write the real 1e10 as "10000000000.0". Output goes into one growable
 * buffer; the keys being sorted live on one shared stack, so an event costs a
 * handful of allocations however deep it is. */
#include "json.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct member {
    const char *key;
    size_t klen;
    json_t *val;
} member;

typedef struct canon {
    char *out;
    size_t len, cap;
    member *mem; /* members of every object being written, innermost last */
    size_t nmem, capmem;
    unsigned flags;
    hs_err *err;
} canon;

static int write_value(canon *c, const json_t *v, int depth);

static int oom(canon *c) {
    return hs_err_set(c->err, 500, "M_UNKNOWN", "Out of memory writing canonical JSON");
}

/* Make room for n more bytes plus one spare, so the final NUL always fits. */
static int reserve(canon *c, size_t n) {
    if (c->cap - c->len > n) return 0;
    size_t cap = c->cap ? c->cap : 256;
    while (cap - c->len <= n) {
        if (cap > SIZE_MAX / 2) return oom(c);
        cap *= 2;
    }
    char *p = realloc(c->out, cap);
    if (!p) return oom(c);
    c->out = p;
    c->cap = cap;
    return 0;
}

static int put(canon *c, const char *s, size_t n) {
    if (reserve(c, n)) return -1;
    memcpy(c->out + c->len, s, n);
    c->len += n;
    return 0;
}

/* The escapes of Python's json.dumps(ensure_ascii=False), which the spec's
 * grammar spells out: short forms where JSON has them, \u00xx (lowercase)
 * for the other C0 controls, and nothing else (not U+007F, not U+2028). */
static int write_escape(canon *c, unsigned char b) {
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 0, '0', '0', 0, 0};
    switch (b) {
    case '"': e[1] = '"'; break;
    case '\\': e[1] = '\\'; break;
    case '\b': e[1] = 'b'; break;
    case '\f': e[1] = 'f'; break;
    case '\n': e[1] = 'n'; break;
    case '\r': e[1] = 'r'; break;
    case '\t': e[1] = 't'; break;
    default:
        e[1] = 'u';
        e[4] = hex[b >> 4];
        e[5] = hex[b & 15];
        return put(c, e, 6);
    }
    return put(c, e, 2);
}

/* Strings are copied in runs between the bytes that need escaping; UTF-8
 * passes through untouched (jansson validated it when the value was made). */
static int write_string(canon *c, const char *s, size_t n) {
    if (reserve(c, n + 2)) return -1;
    c->out[c->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b >= 0x20 && b != '"' && b != '\\') continue;
        if (put(c, s + run, i - run) || write_escape(c, b)) return -1;
        run = i + 1;
    }
    if (put(c, s + run, n - run)) return -1;
    return put(c, "\"", 1);
}

static int write_int(canon *c, long long i) {
    char tmp[24];
    char *p = tmp + sizeof tmp;
    /* Negate in unsigned arithmetic: -LLONG_MIN overflows a long long. */
    unsigned long long u = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (i < 0) *--p = '-';
    return put(c, p, (size_t)(tmp + sizeof tmp - p));
}

static int write_integer(canon *c, json_int_t i) {
    if (!(c->flags & HS_JSON_CANON_ANY_INT) &&
        (i > HS_JSON_MAX_SAFE_INT || i < -HS_JSON_MAX_SAFE_INT))
        return hs_err_set(c->err, 400, "M_BAD_JSON",
                          "Bad JSON value: integer %lld outside ±(2^53-1)", (long long)i);
    return write_int(c, (long long)i);
}

/* A real is only acceptable when it is a whole number in the safe range; it is
 * then the integer it equals (the comparisons are false for NaN, and the cast
 * is only reached in range, where it is defined). */
static int write_real(canon *c, double d) {
    const double max = (double)HS_JSON_MAX_SAFE_INT;
    if (d >= -max && d <= max && (double)(long long)d == d)
        return write_int(c, (long long)d);
    return hs_err_set(c->err, 400, "M_BAD_JSON", "Bad JSON value: float %g", d);
}

static int cmp_member(const void *a, const void *b) {
    const member *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int r = memcmp(x->key, y->key, n); /* bytewise UTF-8 order is code point order */
    if (r) return r;
    return (x->klen > y->klen) - (x->klen < y->klen);
}

static bool skipped(const char *const *skip, const char *key, size_t klen) {
    for (; skip && *skip; skip++)
        if (strlen(*skip) == klen && memcmp(*skip, key, klen) == 0) return true;
    return false;
}

static int reserve_members(canon *c, size_t n) {
    if (c->capmem - c->nmem >= n) return 0;
    size_t cap = c->capmem ? c->capmem : 32;
    while (cap - c->nmem < n) {
        if (cap > SIZE_MAX / 2 / sizeof *c->mem) return oom(c);
        cap *= 2;
    }
    member *m = realloc(c->mem, cap * sizeof *m);
    if (!m) return oom(c);
    c->mem = m;
    c->capmem = cap;
    return 0;
}

/* Push obj's members (less the skipped ones) on the shared stack, sorted. */
static int collect_members(canon *c, const json_t *obj, const char *const *skip) {
    json_t *o = (json_t *)obj; /* jansson's iterators are not const-correct */
    if (reserve_members(c, json_object_size(o))) return -1;
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
        const char *k = json_object_iter_key(it);
        size_t kl = json_object_iter_key_len(it);
        if (skipped(skip, k, kl)) continue;
        c->mem[c->nmem++] = (member){k, kl, json_object_iter_value(it)};
    }
    return 0;
}

static int write_object(canon *c, const json_t *obj, const char *const *skip, int depth) {
    size_t base = c->nmem;
    int rc = collect_members(c, obj, skip);
    size_t n = c->nmem - base;
    if (rc == 0) {
        if (n > 1) qsort(c->mem + base, n, sizeof *c->mem, cmp_member); /* mem may be NULL */
        rc = put(c, "{", 1);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        member m = c->mem[base + i]; /* a copy: deeper objects may move the stack */
        if ((i && put(c, ",", 1)) || write_string(c, m.key, m.klen) || put(c, ":", 1) ||
            write_value(c, m.val, depth + 1))
            rc = -1;
    }
    c->nmem = base;
    return rc ? rc : put(c, "}", 1);
}

static int write_array(canon *c, const json_t *arr, int depth) {
    size_t n = json_array_size(arr);
    if (put(c, "[", 1)) return -1;
    for (size_t i = 0; i < n; i++)
        if ((i && put(c, ",", 1)) || write_value(c, json_array_get(arr, i), depth + 1))
            return -1;
    return put(c, "]", 1);
}

static int write_value(canon *c, const json_t *v, int depth) {
    if (!v) return hs_err_set(c->err, 400, "M_BAD_JSON", "Bad JSON value: missing");
    if (depth >= HS_JSON_MAX_DEPTH)
        return hs_err_set(c->err, 400, "M_BAD_JSON", "Bad JSON: nested too deeply");
    switch (json_typeof(v)) {
    case JSON_OBJECT: return write_object(c, v, NULL, depth);
    case JSON_ARRAY: return write_array(c, v, depth);
    case JSON_STRING: return write_string(c, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return write_integer(c, json_integer_value(v));
    case JSON_REAL: return write_real(c, json_real_value(v));
    case JSON_TRUE: return put(c, "true", 4);
    case JSON_FALSE: return put(c, "false", 5);
    case JSON_NULL: return put(c, "null", 4);
    }
    return hs_err_set(c->err, 400, "M_BAD_JSON", "Bad JSON value: unknown type");
}

char *hs_json_canonical_ex(const json_t *v, const char *const *skip, unsigned flags,
                           size_t *len, hs_err *err) {
    canon c = {.flags = flags, .err = err};
    int rc = v && json_is_object(v) ? write_object(&c, v, skip, 0) : write_value(&c, v, 0);
    free(c.mem);
    if (rc) {
        free(c.out);
        return NULL;
    }
    c.out[c.len] = '\0'; /* reserve() always leaves a spare byte */
    if (len) *len = c.len;
    return c.out;
}

char *hs_json_canonical(const json_t *v, size_t *len, hs_err *err) {
    return hs_json_canonical_ex(v, NULL, 0, len, err);
}
