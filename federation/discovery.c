/* discovery.c — server name -> where to connect, per the spec's "Resolving
 * server names": IP literal, explicit port, /.well-known/matrix/server,
 * SRV _matrix-fed._tcp then the deprecated _matrix._tcp, else port 8448.
 *
 * The decision itself (fed_resolve_with) takes the well-known and SRV
 * lookups as functions, so it is tested without a network. The real lookups
 * go through the outbound client (same TLS and IP policy as everything else)
 * and glibc's resolver (res_nquery: libcurl does no SRV). Two caches: the
 * well-known answer per host, as the spec asks, and the finished target per
 * server name until the well-known or SRV answer behind it expires. */
#include <arpa/nameser.h>
#include <limits.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "transport_internal.h"

/* ---- pure parts ------------------------------------------------------------ */

static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* max-age in seconds from a Cache-Control value; -1 if absent, -2 for no-store. */
static long long cache_control_max_age(const char *cc) {
    long long max_age = -1;
    for (const char *p = cc; p && *p;) {
        p = skip_ws(p);
        size_t n = strcspn(p, ",");
        if (n >= 8 && !strncasecmp(p, "no-store", 8) && (n == 8 || p[8] == ' ')) return -2;
        if (n > 8 && !strncasecmp(p, "max-age", 7)) {
            const char *v = skip_ws(p + 7);
            if (*v == '=') {
                char *end;
                long long s = strtoll(skip_ws(v + 1), &end, 10);
                if (end != skip_ws(v + 1) && s >= 0) max_age = s;
            }
        }
        p += n;
        if (*p == ',') p++;
    }
    return max_age;
}

long long fed_wellknown_cache_ms(const char *cache_control, const char *expires, long long now_ms) {
    long long ms;
    long long max_age = cache_control_max_age(cache_control);
    if (max_age == -2) {
        ms = 0;
    } else if (max_age >= 0) {
        ms = max_age > FED_WK_MAX_MS / 1000 ? FED_WK_MAX_MS : max_age * 1000;
    } else if (expires) {
        /* RFC 9111: an invalid date (such as "0") means "already expired". */
        time_t t = curl_getdate(expires, NULL);
        ms = t < 0 ? 0 : (long long)t * 1000 - now_ms;
    } else {
        return FED_WK_DEFAULT_MS;
    }
    if (ms < FED_WK_MIN_MS) ms = FED_WK_MIN_MS;
    if (ms > FED_WK_MAX_MS) ms = FED_WK_MAX_MS;
    return ms;
}

int fed_wellknown_parse(const char *body, size_t len, char *out, size_t outcap) {
    hs_err err;
    json_t *o = hs_json_parse_object(body, len, &err);
    if (!o) return -1;
    const char *s = json_string_value(json_object_get(o, "m.server"));
    int rc = -1;
    if (s && strlen(s) < outcap && hs_server_name_valid(s)) {
        strcpy(out, s);
        rc = 0;
    }
    json_decref(o);
    return rc;
}

int fed_srv_parse(const unsigned char *msg, int len, fed_srv_record *out, int max) {
    ns_msg h;
    if (len <= 0 || ns_initparse(msg, len, &h) < 0) return -1;
    int n = 0, count = ns_msg_count(h, ns_s_an);
    for (int i = 0; i < count && n < max; i++) {
        ns_rr rr;
        if (ns_parserr(&h, ns_s_an, i, &rr) < 0) return -1;
        if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in) continue; /* CNAMEs */
        const unsigned char *rd = ns_rr_rdata(rr);
        if (ns_rr_rdlen(rr) < 7) return -1;
        fed_srv_record *r = &out[n];
        r->priority = ns_get16(rd);
        r->weight = ns_get16(rd + 2);
        r->port = ns_get16(rd + 4);
        r->ttl = ns_rr_ttl(rr);
        char name[NS_MAXDNAME];
        if (ns_name_uncompress(ns_msg_base(h), ns_msg_end(h), rd + 6, name, sizeof name) < 0)
            return -1;
        size_t nl = strlen(name);
        if (nl > 1 && name[nl - 1] == '.') name[--nl] = 0;
        if (nl == 0) strcpy(name, "."); /* the root: "no service here" */
        if (nl >= sizeof r->target) return -1;
        strcpy(r->target, name);
        n++;
    }
    return n;
}

int fed_srv_pick(const fed_srv_record *recs, int n, double rnd) {
    if (n <= 0) return -1;
    unsigned best = UINT_MAX;
    unsigned long total = 0;
    for (int i = 0; i < n; i++)
        if (recs[i].priority < best) best = recs[i].priority;
    for (int i = 0; i < n; i++)
        if (recs[i].priority == best) total += recs[i].weight;
    int first = -1;
    double acc = 0, goal = rnd * (double)total;
    for (int i = 0; i < n; i++) {
        if (recs[i].priority != best) continue;
        if (first < 0) first = i;
        acc += recs[i].weight;
        if (total > 0 && goal < acc) return i;
    }
    return first; /* all weights 0: the first of the priority */
}

static void set_target(fed_target *t, const char *host, int port, const char *connect,
                       const char *host_header) {
    snprintf(t->tls_host, sizeof t->tls_host, "%s", host);
    t->port = port;
    snprintf(t->connect_host, sizeof t->connect_host, "%s",
             connect && strcasecmp(connect, host) ? connect : "");
    snprintf(t->host_header, sizeof t->host_header, "%s", host_header);
}

/* SRV records cached for their TTL within [1 min, 1 h]. */
static long long srv_cache_ms(unsigned ttl) {
    long long ms = (long long)ttl * 1000;
    return ms < 60000 ? 60000 : ms > 3600000 ? 3600000 : ms;
}

/* Steps 3.3-3.5 and 4-6: SRV for name, else port 8448. Host header and
 * certificate stay `name` whatever the SRV record says. */
static int resolve_srv(const fed_resolver_ops *ops, const char *name, fed_target *t,
                       long long now_ms, long long *expires_ms, hs_err *err) {
    static const char *const services[] = {"_matrix-fed._tcp.", "_matrix._tcp."};
    for (size_t s = 0; s < 2; s++) {
        char q[300];
        fed_srv_record recs[16];
        snprintf(q, sizeof q, "%s%s", services[s], name);
        int n = ops->srv(ops->ctx, q, recs, 16);
        if (n <= 0) continue;
        int i = fed_srv_pick(recs, n, randombytes_uniform(1u << 30) / (double)(1u << 30));
        long long until = now_ms + srv_cache_ms(recs[i].ttl);
        if (until < *expires_ms) *expires_ms = until;
        if (!strcmp(recs[i].target, "."))
            return hs_err_set(err, 502, "M_UNKNOWN", "%s has no federation service (SRV %s)",
                              name, q);
        set_target(t, name, (int)recs[i].port, recs[i].target, name);
        return 0;
    }
    set_target(t, name, 8448, NULL, name);
    return 0;
}

int fed_resolve_with(const fed_resolver_ops *ops, const char *server_name, fed_target *t,
                     long long now_ms, long long *expires_ms, hs_err *err) {
    char host[256], dhost[256], deleg[300];
    int port, fam, dport, dfam;
    memset(t, 0, sizeof *t);
    *expires_ms = LLONG_MAX;
    if (hs_server_name_parse(server_name, host, sizeof host, &port, &fam) < 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "'%.300s' is not a valid server name",
                          server_name);
    if (fam || port) { /* steps 1 and 2 */
        set_target(t, host, port ? port : 8448, NULL, server_name);
        return 0;
    }
    long long wk_until = LLONG_MAX;
    int wk = ops->well_known(ops->ctx, host, deleg, sizeof deleg, &wk_until);
    *expires_ms = wk_until;
    if (wk == 0 && hs_server_name_parse(deleg, dhost, sizeof dhost, &dport, &dfam) == 0) {
        if (dfam || dport) { /* 3.1 and 3.2: Host is the delegated name as given */
            set_target(t, dhost, dport ? dport : 8448, NULL, deleg);
            return 0;
        }
        return resolve_srv(ops, dhost, t, now_ms, expires_ms, err); /* 3.3 - 3.5 */
    }
    return resolve_srv(ops, host, t, now_ms, expires_ms, err); /* 4 - 6 */
}

/* ---- caches ------------------------------------------------------------------ */

/* A small TTL map: string key -> bytes. Bounded: past CACHE_MAX entries it
 * drops what expired, and if that is not enough, everything. */
#define CACHE_BUCKETS 256
#define CACHE_MAX 10000

typedef struct cache_entry {
    struct cache_entry *next;
    long long expires_ms;
    size_t len;
    char *key;
    unsigned char val[];
} cache_entry;

typedef struct ttl_cache {
    pthread_mutex_t mu;
    cache_entry *b[CACHE_BUCKETS];
    size_t n;
} ttl_cache;

static ttl_cache wk_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};
static ttl_cache target_cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

static unsigned key_hash(const char *k) {
    unsigned h = 5381;
    for (; *k; k++) h = h * 33 + (unsigned char)*k;
    return h % CACHE_BUCKETS;
}

static void cache_prune(ttl_cache *c, long long now, bool all) {
    for (int i = 0; i < CACHE_BUCKETS; i++)
        for (cache_entry **p = &c->b[i]; *p;) {
            cache_entry *e = *p;
            if (all || e->expires_ms <= now) {
                *p = e->next;
                free(e->key);
                free(e);
                c->n--;
            } else {
                p = &e->next;
            }
        }
}

/* Copies the entry into val (up to cap) and returns its length; -1 if absent
 * or, unless stale_ok, expired. *expires_ms (may be NULL) gets its expiry. */
static long cache_get(ttl_cache *c, const char *key, void *val, size_t cap, long long now,
                      bool stale_ok, long long *expires_ms) {
    long rc = -1;
    pthread_mutex_lock(&c->mu);
    for (cache_entry *e = c->b[key_hash(key)]; e; e = e->next) {
        if (strcmp(e->key, key)) continue;
        if (e->expires_ms <= now && !stale_ok) break;
        if (expires_ms) *expires_ms = e->expires_ms;
        rc = (long)(e->len < cap ? e->len : cap);
        memcpy(val, e->val, (size_t)rc);
        break;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static void cache_put(ttl_cache *c, const char *key, const void *val, size_t len,
                      long long expires_ms, long long now) {
    cache_entry *e = malloc(sizeof *e + len);
    if (!e || !(e->key = strdup(key))) {
        free(e);
        return;
    }
    e->len = len;
    e->expires_ms = expires_ms;
    memcpy(e->val, val, len);
    pthread_mutex_lock(&c->mu);
    unsigned h = key_hash(key);
    for (cache_entry **p = &c->b[h]; *p; p = &(*p)->next)
        if (!strcmp((*p)->key, key)) {
            cache_entry *old = *p;
            *p = old->next;
            free(old->key);
            free(old);
            c->n--;
            break;
        }
    if (c->n >= CACHE_MAX) cache_prune(c, now, false);
    if (c->n >= CACHE_MAX) cache_prune(c, now, true);
    e->next = c->b[h];
    c->b[h] = e;
    c->n++;
    pthread_mutex_unlock(&c->mu);
}

void fed_discovery_reset(void) {
    ttl_cache *cs[] = {&wk_cache, &target_cache};
    for (int i = 0; i < 2; i++) {
        pthread_mutex_lock(&cs[i]->mu);
        cache_prune(cs[i], 0, true);
        pthread_mutex_unlock(&cs[i]->mu);
    }
}

/* ---- the real lookups --------------------------------------------------------- */

/* What the well-known cache holds: the delegated name, or "" for "none". */
typedef struct wk_value {
    char deleg[300];
} wk_value;

#define WK_DOWN_MS (2LL * 60 * 1000) /* Synapse: a server that had one is down */

/* Spread expiries ±10% so a restart doesn't refetch everything at once. */
static long long jitter(long long ms) {
    return ms - ms / 10 + (long long)randombytes_uniform((uint32_t)(ms / 5 + 1));
}

/* Fetch https://host/.well-known/matrix/server. 0 with the delegated name and
 * the cache period; -1 with *temporary (no answer, or 5xx) otherwise. */
static int wk_fetch(hs_server *srv, const char *host, wk_value *v, long long *period,
                    bool *temporary) {
    fed_http h;
    char url[400], port[16] = "";
    const char *env = getenv("PVYHS_FEDERATION_WELL_KNOWN_PORT"); /* tests only */
    if (env && *env) snprintf(port, sizeof port, ":%d", atoi(env));
    *temporary = true;
    if (fed_http_prepare(&h, srv->cfg, 15000, FED_WK_MAX_BYTES) < 0) return -1;
    snprintf(url, sizeof url, "https://%s%s/.well-known/matrix/server", host, port);
    curl_easy_setopt(h.easy, CURLOPT_URL, url);
    curl_easy_setopt(h.easy, CURLOPT_FOLLOWLOCATION, 1L); /* spec: follow 30x, no loops */
    curl_easy_setopt(h.easy, CURLOPT_MAXREDIRS, 5L);
    long status = 0;
    int rc = -1;
    if (fed_http_perform(&h) == CURLE_OK) {
        curl_easy_getinfo(h.easy, CURLINFO_RESPONSE_CODE, &status);
        *temporary = status >= 500;
        if (status == 200 && fed_wellknown_parse(h.body, h.body_len, v->deleg, sizeof v->deleg) == 0) {
            bool headers = h.cache_control || h.expires;
            *period = fed_wellknown_cache_ms(h.cache_control, h.expires, hs_now_ms());
            if (!headers) *period = jitter(*period);
            rc = 0;
        }
    }
    if (rc < 0)
        hs_info("federation: no usable /.well-known/matrix/server for %s (%s)", host,
                status ? "bad answer" : fed_http_strerror(&h));
    else
        hs_debug("federation: %s delegates to %s", host, v->deleg);
    fed_http_cleanup(&h);
    return rc;
}

static int real_well_known(void *ctx, const char *host, char *out, size_t outcap,
                           long long *expires) {
    hs_server *srv = ctx;
    long long now = hs_now_ms(), until = 0;
    wk_value v, prev;
    bool cached = cache_get(&wk_cache, host, &prev, sizeof prev, now, true, &until) ==
                  (long)sizeof prev;
    if (cached && until > now) {
        v = prev;
        *expires = until;
    } else {
        bool had_valid = cached && prev.deleg[0], temporary = false;
        long long period;
        memset(&v, 0, sizeof v);
        if (wk_fetch(srv, host, &v, &period, &temporary) < 0) {
            /* Errors are cached for an hour; a server that had a valid answer
             * is retried sooner, and while it is down its old answer holds. */
            memset(&v, 0, sizeof v);
            if (temporary && had_valid) v = prev;
            period = had_valid ? WK_DOWN_MS : jitter(FED_WK_ERROR_MS);
        }
        cache_put(&wk_cache, host, &v, sizeof v, now + period, now);
        *expires = now + period;
    }
    if (!v.deleg[0] || strlen(v.deleg) >= outcap) return -1;
    strcpy(out, v.deleg);
    return 0;
}

static int real_srv(void *ctx, const char *qname, fed_srv_record *out, int max) {
    (void)ctx;
    struct __res_state st;
    memset(&st, 0, sizeof st);
    if (res_ninit(&st) != 0) return 0;
    unsigned char buf[8192];
    int n = res_nquery(&st, qname, ns_c_in, ns_t_srv, buf, sizeof buf);
    res_nclose(&st);
    if (n <= 0) return 0; /* NXDOMAIN, no records, or no DNS: none */
    int got = fed_srv_parse(buf, n < (int)sizeof buf ? n : (int)sizeof buf, out, max);
    return got < 0 ? 0 : got;
}

int fed_resolve_server(hs_server *srv, const char *server_name, fed_target *t, hs_err *err) {
    long long now = hs_now_ms();
    if (strlen(server_name) < 300 &&
        cache_get(&target_cache, server_name, t, sizeof *t, now, false, NULL) == (long)sizeof *t)
        return 0;
    fed_resolver_ops ops = {real_well_known, real_srv, srv};
    long long expires;
    if (fed_resolve_with(&ops, server_name, t, now, &expires, err) < 0) return -1;
    if (expires != LLONG_MAX) cache_put(&target_cache, server_name, t, sizeof *t, expires, now);
    hs_debug("federation: %s -> %s:%d%s%s (Host: %s)", server_name, t->tls_host, t->port,
             t->connect_host[0] ? " via " : "", t->connect_host, t->host_header);
    return 0;
}
