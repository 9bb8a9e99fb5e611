/* util.c — media IDs, mxc URIs, and the headers that make serving
 * user-supplied files safe for web clients. */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "media_internal.h"

/* The spec allows only these in a media ID, which rules out path tricks. */
bool media_id_valid(const char *id) {
    size_t n = strlen(id);
    if (n == 0 || n > 255) return false;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') return false;
    return true;
}

void media_random_id(char out[MEDIA_ID_LEN + 1]) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < MEDIA_ID_LEN; i++) out[i] = abc[randombytes_uniform(sizeof abc - 1)];
    out[MEDIA_ID_LEN] = 0;
}

/* A server name's characters (host, IPv4, [IPv6], :port); enough to keep
 * anything odd out of queries, paths and federation requests. */
static bool server_name_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 255) return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p)) return false;
    return true;
}

int media_parse_mxc(const char *s, char **origin, char **media_id, hs_err *err) {
    if (!strncmp(s, "mxc://", 6)) s += 6;
    const char *slash = strchr(s, '/');
    if (!slash) return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is not an mxc:// URI", s);
    *origin = strndup(s, (size_t)(slash - s));
    *media_id = strdup(slash + 1);
    if (!server_name_ok(*origin) || !media_id_valid(*media_id)) {
        free(*origin), free(*media_id);
        *origin = *media_id = NULL;
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%s' is not an mxc:// URI", s);
    }
    return 0;
}

bool media_is_local(hs_server *srv, const char *origin) {
    return !strcmp(origin, srv->cfg->server_name);
}

/* The spec's "serving inline content" list. */
static const char *const inline_types[] = {
    "text/css", "text/plain", "text/csv", "application/json", "application/ld+json",
    "image/jpeg", "image/gif", "image/png", "image/apng", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "video/quicktime",
    "audio/mp4", "audio/webm", "audio/aac", "audio/mpeg", "audio/ogg", "audio/wave",
    "audio/wav", "audio/x-wav", "audio/x-pn-wav", "audio/flac", "audio/x-flac", NULL,
};

bool media_inline_type(const char *content_type) {
    if (!content_type) return false;
    size_t n = strcspn(content_type, ";");
    while (n && content_type[n - 1] == ' ') n--;
    for (const char *const *t = inline_types; *t; t++)
        if (strlen(*t) == n && !strncasecmp(*t, content_type, n)) return true;
    return false;
}

/* RFC 2616 token characters: a file name made only of these goes unquoted. */
static bool token_char(unsigned char c) {
    return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?={}", c);
}

/* RFC 5987 attr-char: what filename*= may carry without %-encoding. */
static bool attr_char(unsigned char c) {
    return isalnum(c) || strchr("!#$&+-.^_`|~", c);
}

char *media_disposition(bool inline_ok, const char *filename) {
    const char *kind = inline_ok ? "inline" : "attachment";
    char *out;
    if (!filename || !*filename) return strdup(kind);
    bool token = true;
    for (const unsigned char *p = (const unsigned char *)filename; *p; p++) token &= token_char(*p);
    if (token) {
        if (asprintf(&out, "%s; filename=%s", kind, filename) < 0) return NULL;
        return out;
    }
    size_t n = strlen(filename);
    char *enc = malloc(n * 3 + 1), *w = enc;
    for (const unsigned char *p = (const unsigned char *)filename; *p; p++) {
        if (attr_char(*p)) *w++ = (char)*p;
        else w += sprintf(w, "%%%02X", *p);
    }
    *w = 0;
    if (asprintf(&out, "%s; filename*=utf-8''%s", kind, enc) < 0) out = NULL;
    free(enc);
    return out;
}

void media_safe_headers(struct MHD_Response *resp) {
    /* The spec's recommended policy (and Synapse's): a browser that opens the
     * URL directly runs nothing from it. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "sandbox; default-src 'none'; script-src 'none'; plugin-types "
                            "application/pdf; style-src 'unsafe-inline'; media-src 'self'; "
                            "object-src 'self';");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "cross-origin");
    /* Media never changes under its URI; "private" keeps shared caches from
     * handing authenticated media to anyone. */
    MHD_add_response_header(resp, "Cache-Control", "private, max-age=86400");
}

/* A non-negative decimal at *p, saturating at LLONG_MAX; false if none. */
static bool range_number(const char **p, long long *out) {
    if (!isdigit((unsigned char)**p)) return false;
    long long v = 0;
    for (; isdigit((unsigned char)**p); (*p)++) {
        int d = **p - '0';
        v = v > (LLONG_MAX - d) / 10 ? LLONG_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

int media_parse_range(const char *h, long long size, long long *first, long long *last) {
    if (!h || strncasecmp(h, "bytes", 5)) return 0; /* another unit: ignored */
    const char *p = h + 5;
    while (*p == ' ' || *p == '\t') p++;
    if (*p++ != '=') return 0;
    while (*p == ' ' || *p == '\t') p++;
    if (strchr(p, ',')) return 0; /* several ranges: the whole file instead (RFC 9110 §14.2) */
    long long a = -1, b = -1;
    bool has_a = range_number(&p, &a);
    if (*p++ != '-') return 0;
    bool has_b = range_number(&p, &b);
    while (*p == ' ' || *p == '\t') p++;
    if (*p || (!has_a && !has_b) || (has_a && has_b && b < a)) return 0; /* invalid: ignored */
    if (!has_a) { /* the last b bytes */
        if (b == 0 || size == 0) return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (a >= size) return -1;
    *first = a;
    *last = !has_b || b >= size ? size - 1 : b;
    return 1;
}
