/* router.c — method + path-template routing with percent-decoded parameters.
 *
 * Paths are split on '/' before decoding, so an encoded slash inside a room
 * alias or event ID stays inside its parameter. Client-Server routes flagged
 * HS_R0 also answer under /_matrix/client/r0/ for older clients (matrix-nio). */
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAX_SEGS 16

typedef struct route {
    const char *method;
    char *segs[MAX_SEGS]; /* literal, or "{name}" / "{name?}" */
    int n_segs;
    hs_handler h;
    int flags;
} route;

struct hs_router {
    route *routes;
    size_t n, cap;
};

hs_router *hs_router_new(void) { return calloc(1, sizeof(hs_router)); }

void hs_router_free(hs_router *rt) {
    if (!rt) return;
    for (size_t i = 0; i < rt->n; i++)
        for (int s = 0; s < rt->routes[i].n_segs; s++) free(rt->routes[i].segs[s]);
    free(rt->routes);
    free(rt);
}

/* Split "/a/b/c" into segments; returns the count, or -1 if too many.
 * An empty final segment ("/a/b/") is kept so "{x?}" can match it. */
static int split(const char *path, char **out, int max) {
    int n = 0;
    const char *p = path;
    if (*p == '/') p++;
    while (1) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == max) return -1;
        out[n++] = strndup(p, len);
        if (!slash) break;
        p = slash + 1;
    }
    return n;
}

void hs_route(hs_router *rt, const char *method, const char *tmpl, hs_handler h, int flags) {
    if (rt->n == rt->cap) {
        rt->cap = rt->cap ? rt->cap * 2 : 64;
        rt->routes = realloc(rt->routes, rt->cap * sizeof *rt->routes);
    }
    route *r = &rt->routes[rt->n++];
    memset(r, 0, sizeof *r);
    r->method = method;
    r->n_segs = split(tmpl, r->segs, MAX_SEGS);
    r->h = h;
    r->flags = flags;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode %XX in place; a malformed escape is kept literally, as Synapse does. */
static void pct_decode(char *s) {
    char *w = s;
    for (char *p = s; *p; p++) {
        int hi, lo;
        if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
            *w++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = 0;
}

static bool is_param(const char *seg) { return seg[0] == '{'; }
static bool is_optional(const char *seg) { return strstr(seg, "?}") != NULL; }

/* Does the route's template match these segments? Fills params when so. */
static bool match_segs(const route *rt, char **segs, int n, hs_req *r) {
    int need = rt->n_segs;
    bool opt_tail = need > 0 && is_optional(rt->segs[need - 1]);
    if (!(n == need || (opt_tail && n == need - 1))) return false;
    int np = 0;
    for (int i = 0; i < need; i++) {
        const char *t = rt->segs[i];
        const char *s = i < n ? segs[i] : "";
        if (is_param(t)) {
            if (!*s && !is_optional(t)) return false;
            if (np >= HS_MAX_PARAMS) return false;
        } else if (strcmp(t, s) != 0) {
            return false;
        }
        if (is_param(t) && r) r->params[np] = (char *)s;
        if (is_param(t)) np++;
    }
    if (r) r->n_params = np;
    return true;
}

/* A listener serves the resources its config names (Synapse's model). */
static bool served_here(int flags, int resources) {
    if (flags & HS_ANY_LISTENER) return true;
    if (flags & HS_FEDERATION) return (resources & HS_RES_FEDERATION) != 0;
    return (resources & HS_RES_CLIENT) != 0;
}

hs_handler hs_router_match(const hs_router *rt, const char *method, const char *path,
                           int resources, hs_req *r, int *flags, int *status) {
    char *segs[MAX_SEGS + 1];
    int n = split(path, segs, MAX_SEGS + 1);
    *status = 404;
    if (n < 0 || n > MAX_SEGS) {
        for (int i = 0; i < MAX_SEGS + 1 && n > 0 && i < n; i++) free(segs[i]);
        return NULL;
    }
    for (int i = 0; i < n; i++) pct_decode(segs[i]);
    bool r0 = n > 2 && !strcmp(segs[0], "_matrix") && !strcmp(segs[1], "client") &&
              !strcmp(segs[2], "r0");
    if (r0) {
        free(segs[2]);
        segs[2] = strdup("v3");
    }
    /* HEAD is GET without the body (libmicrohttpd drops it), as the CORS
     * headers advertise (MSC4138). */
    if (!strcmp(method, "HEAD")) method = "GET";
    hs_handler found = NULL;
    for (size_t i = 0; i < rt->n && !found; i++) {
        const route *ro = &rt->routes[i];
        if (r0 && !(ro->flags & HS_R0)) continue;
        if (!served_here(ro->flags, resources)) continue;
        if (!match_segs(ro, segs, n, NULL)) continue;
        if (strcmp(ro->method, method) != 0) {
            *status = 405;
            continue;
        }
        match_segs(ro, segs, n, r);
        for (int p = 0; p < r->n_params; p++) r->params[p] = strdup(r->params[p]);
        *flags = ro->flags;
        found = ro->h;
    }
    for (int i = 0; i < n; i++) free(segs[i]);
    return found;
}
