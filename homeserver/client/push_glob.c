/* push_glob.c — the spec's glob-style matching for push rules.
 *
 * Strings are compared as code points lowered with the C.UTF-8 locale (so
 * "Éric" matches "éric", not only ASCII). Matching runs a small NFA over
 * the pattern's positions: O(len(value) × len(pattern)) whatever the
 * pattern, so a hostile "*a*a*a*…" cannot make a message slow to send. */
#include <locale.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "push_rules.h"

static locale_t utf8_locale;
static pthread_once_t locale_once = PTHREAD_ONCE_INIT;

static void locale_init(void) { utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0); }

static uint32_t lower(uint32_t c) {
    if (c < 128) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (!utf8_locale) return c;
    return (uint32_t)towlower_l((wint_t)c, utf8_locale);
}

/* Decode UTF-8 (jansson strings are valid) into lowered code points. */
static uint32_t *decode(const char *s, size_t *n) {
    size_t len = strlen(s);
    uint32_t *out = malloc((len + 1) * sizeof *out);
    if (!out) return NULL;
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t c = *p;
        int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
        if (extra) c &= 0x3F >> extra;
        p++;
        for (int i = 0; i < extra && (*p & 0xC0) == 0x80; i++) c = (c << 6) | (*p++ & 0x3F);
        out[k++] = lower(c);
    }
    *n = k;
    return out;
}

/* The spec's word characters: [A-Za-z0-9_]; everything else separates words. */
static bool is_word(uint32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Is there a word boundary at position i (0..n) of v? At either end, or next
 * to a non-word character (as Synapse's (^|\b|\W)…(\b|\W|$) has it, so a
 * display name starting with '@' still matches after a letter). */
static bool boundary(const uint32_t *v, size_t n, size_t i) {
    return i == 0 || i == n || !is_word(v[i - 1]) || !is_word(v[i]);
}

/* Follow '*' without consuming: a star may match nothing. */
static void closure(bool *st, const uint32_t *p, const bool *wild, size_t m) {
    for (size_t k = 0; k < m; k++)
        if (st[k] && wild[k] && p[k] == '*') st[k + 1] = true;
}

static bool nfa(const uint32_t *p, const bool *wild, size_t m, const uint32_t *v, size_t n,
                bool words) {
    bool *cur = calloc(m + 1, 1), *nxt = calloc(m + 1, 1);
    bool hit = false;
    if (!cur || !nxt) goto out;
    for (size_t i = 0;; i++) {
        if (i == 0 || (words && boundary(v, n, i))) cur[0] = true;
        closure(cur, p, wild, m);
        if (cur[m] && (i == n || (words && boundary(v, n, i)))) {
            hit = true;
            break;
        }
        if (i == n) break;
        memset(nxt, 0, m + 1);
        bool any = false;
        for (size_t k = 0; k < m; k++) {
            if (!cur[k]) continue;
            if (wild[k] && p[k] == '*') nxt[k] = any = true;
            else if ((wild[k] && p[k] == '?') || p[k] == v[i]) nxt[k + 1] = any = true;
        }
        bool *t = cur;
        cur = nxt, nxt = t;
        if (!any && !words) break; /* anchored and nothing alive: no match */
    }
out:
    free(cur);
    free(nxt);
    return hit;
}

bool push_glob_match(const char *pattern, const char *value, enum push_glob_mode mode,
                     bool literal) {
    pthread_once(&locale_once, locale_init);
    size_t m, n;
    uint32_t *p = decode(pattern, &m), *v = decode(value, &n);
    bool *wild = calloc(m + 1, 1);
    bool hit = false;
    if (p && v && wild) {
        for (size_t k = 0; k < m; k++) wild[k] = !literal && (p[k] == '*' || p[k] == '?');
        hit = nfa(p, wild, m, v, n, mode == PUSH_GLOB_WORDS);
    }
    free(p);
    free(v);
    free(wild);
    return hit;
}
