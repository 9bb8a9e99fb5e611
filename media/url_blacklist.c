/* url_blacklist.c — url_preview_url_blacklist: which URLs the previewer must
 * never fetch, by the shape of the URL (Synapse's key and semantics).
 *
 * An entry names URL components as Python's urllib.parse.urlsplit gives
 * them -- scheme, netloc, path, query, fragment, username, password,
 * hostname, port -- each with a glob (fnmatch, case-sensitive, '*' crossing
 * '/') or, when it starts with ^, a regular expression. A URL is refused when
 * every component of one entry matches; a component the URL lacks (no port,
 * no user name) matches nothing. The split below follows urlsplit's rules so
 * an entry written for Synapse means the same here. This is about URL shapes
 * an admin never wants fetched; addresses are url_preview_ip_range_blacklist's
 * job, checked on every connection. */
#include <ctype.h>
#include <fnmatch.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"

void media_url_parts_free(char *parts[CFG_URL_NPARTS]) {
    for (int i = 0; i < CFG_URL_NPARTS; i++) free(parts[i]), parts[i] = NULL;
}

static char *lower(char *s) {
    for (char *p = s; p && *p; p++) *p = (char)tolower((unsigned char)*p);
    return s;
}

/* netloc's user name, password, host name and port, as urlsplit derives them. */
static int split_netloc(const char *netloc, char *parts[CFG_URL_NPARTS]) {
    const char *at = strrchr(netloc, '@');
    const char *hostinfo = at ? at + 1 : netloc;
    if (at) {
        const char *colon = memchr(netloc, ':', (size_t)(at - netloc));
        parts[CFG_URL_USERNAME] = strndup(netloc, (size_t)((colon ? colon : at) - netloc));
        if (colon) parts[CFG_URL_PASSWORD] = strndup(colon + 1, (size_t)(at - colon - 1));
    }
    const char *port = NULL;
    const char *open = strchr(hostinfo, '[');
    if (open) { /* [v6]:port; the host is what the brackets hold */
        const char *close = strchr(open, ']');
        size_t n = close ? (size_t)(close - open - 1) : strlen(open + 1);
        if (n) parts[CFG_URL_HOSTNAME] = lower(strndup(open + 1, n));
        if (close) port = strchr(close, ':');
    } else {
        port = strchr(hostinfo, ':');
        size_t n = port ? (size_t)(port - hostinfo) : strlen(hostinfo);
        if (n) parts[CFG_URL_HOSTNAME] = lower(strndup(hostinfo, n));
    }
    if (port && port[1]) {
        long v = 0;
        for (const char *p = port + 1; *p; p++) {
            if (!isdigit((unsigned char)*p)) return -1; /* urlsplit raises ValueError */
            if ((v = v * 10 + (*p - '0')) > 65535) return -1;
        }
        char buf[8];
        snprintf(buf, sizeof buf, "%ld", v); /* as str(int): "080" is "80" */
        parts[CFG_URL_PORT] = strdup(buf);
    }
    return 0;
}

int media_url_split(const char *url, char *parts[CFG_URL_NPARTS]) {
    memset(parts, 0, sizeof(char *) * CFG_URL_NPARTS);
    /* urlsplit drops leading spaces and control characters and every tab
     * and line break. */
    while (*url && (unsigned char)*url <= ' ') url++;
    char *u = malloc(strlen(url) + 1), *w = u;
    for (const char *p = url; *p; p++)
        if (*p != '\t' && *p != '\r' && *p != '\n') *w++ = *p;
    *w = 0;
    char *colon = strchr(u, ':');
    if (!colon || colon == u) { /* only absolute http(s) URLs come here */
        free(u);
        return -1;
    }
    parts[CFG_URL_SCHEME] = lower(strndup(u, (size_t)(colon - u)));
    char *rest = colon + 1;
    char *hash = strchr(rest, '#');
    parts[CFG_URL_FRAGMENT] = strdup(hash ? hash + 1 : "");
    if (hash) *hash = 0;
    char *q = strchr(rest, '?');
    parts[CFG_URL_QUERY] = strdup(q ? q + 1 : "");
    if (q) *q = 0;
    if (rest[0] == '/' && rest[1] == '/') {
        rest += 2;
        size_t n = strcspn(rest, "/");
        parts[CFG_URL_NETLOC] = strndup(rest, n);
        rest += n;
    } else {
        parts[CFG_URL_NETLOC] = strdup("");
    }
    parts[CFG_URL_PATH] = strdup(rest);
    int rc = split_netloc(parts[CFG_URL_NETLOC], parts);
    free(u);
    if (rc < 0) media_url_parts_free(parts);
    return rc;
}

static bool matches(const char *pattern, const char *value) {
    if (pattern[0] != '^') return fnmatch(pattern, value, FNM_NOESCAPE) == 0;
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) return false; /* config check refused it */
    bool m = regexec(&re, value, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

int media_url_blocked(const cfg *cf, const char *url) {
    if (!cf->n_url_preview_url_blacklist) return 0;
    char *parts[CFG_URL_NPARTS];
    if (media_url_split(url, parts) < 0) return -1;
    int blocked = 0;
    for (size_t i = 0; i < cf->n_url_preview_url_blacklist && !blocked; i++) {
        const cfg_url_rule *r = &cf->url_preview_url_blacklist[i];
        bool all = true;
        for (int p = 0; p < CFG_URL_NPARTS && all; p++)
            if (r->pattern[p]) all = parts[p] && matches(r->pattern[p], parts[p]);
        blocked = all;
    }
    media_url_parts_free(parts);
    return blocked;
}
