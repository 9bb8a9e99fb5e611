/* http_client.c — outbound HTTPS: one libcurl multi handle driven by its own
 * thread.
 *
 * Callers prepare an easy handle on their own thread, hand it over and sleep
 * on a condition variable until the curl thread has finished it. One multi
 * handle means one connection cache and one DNS cache for all outbound
 * traffic, so a busy destination keeps its TLS connection; a share handle
 * adds TLS session resumption across connections. A future asynchronous
 * sender can hand over handles the same way without waiting.
 *
 * Every address curl is about to connect to passes the IP policy first
 * (CURLOPT_OPENSOCKETFUNCTION), whichever name resolved to it and whether a
 * redirect led there: a DNS name pointed at the LAN gets nowhere. */
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "homeserver/core/log.h"
#include "transport_internal.h"

#ifndef PVYHS_VERSION
#define PVYHS_VERSION "0.1.0"
#endif

static struct {
    pthread_mutex_t mu;
    bool running, stop;
    pthread_t th;
    CURLM *multi;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    fed_http **pending; /* handed over, not yet added to the multi handle */
    size_t n_pending, cap_pending;
    fed_http **active;  /* in the multi handle (touched by the curl thread only) */
    size_t n_active, cap_active;
    /* the system's CAs and federation_custom_ca_list, parsed once */
    bool cas_loaded;
    X509_STORE *store;
} G = {.mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void share_lock(CURL *e, curl_lock_data d, curl_lock_access a, void *u) {
    (void)e, (void)a, (void)u;
    pthread_mutex_lock(&G.share_mu[d]);
}

static void share_unlock(CURL *e, curl_lock_data d, void *u) {
    (void)e, (void)u;
    pthread_mutex_unlock(&G.share_mu[d]);
}

static void global_init(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&G.share_mu[i], NULL);
    G.share = curl_share_init();
    curl_share_setopt(G.share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(G.share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(G.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

/* ---- trusted CAs ------------------------------------------------------------ */

/* One certificate store for every connection. Left to itself curl reads and
 * parses the whole system bundle for each new TLS connection (some 25 ms,
 * on the one curl thread, so every other transfer waits); this store is
 * built once and shared by reference. NULL if it cannot be built: curl
 * then loads the system bundle itself, as before. */
static void load_cas(const cfg *c) {
    if (G.cas_loaded) return;
    G.cas_loaded = true;
    X509_STORE *st = X509_STORE_new();
    if (!st || X509_STORE_set_default_paths(st) != 1) {
        hs_error("federation: cannot load the system's CA certificates");
        X509_STORE_free(st);
        return;
    }
    for (size_t i = 0; i < c->federation_custom_ca_list.n; i++) {
        const char *path = c->federation_custom_ca_list.v[i];
        FILE *f = fopen(path, "r");
        int n = 0;
        X509 *x;
        while (f && (x = PEM_read_X509(f, NULL, NULL, NULL))) {
            X509_STORE_add_cert(st, x); /* duplicates are harmless */
            X509_free(x);
            n++;
        }
        if (f) fclose(f);
        if (!n) hs_error("federation_custom_ca_list: no PEM certificate in %s", path);
    }
    G.store = st;
}

static CURLcode ssl_ctx_cb(CURL *e, void *ssl_ctx, void *u) {
    (void)e, (void)u;
    SSL_CTX_set1_cert_store((SSL_CTX *)ssl_ctx, G.store);
    return CURLE_OK;
}

/* ---- per-transfer callbacks ------------------------------------------------------ */

static size_t write_cb(char *data, size_t size, size_t n, void *u) {
    fed_http *h = u;
    size_t len = size * n;
    if ((long)(h->body_len + len) > h->max_body) {
        h->too_large = true;
        return 0; /* aborts the transfer */
    }
    char *b = realloc(h->body, h->body_len + len + 1);
    if (!b) return 0;
    memcpy(b + h->body_len, data, len);
    h->body = b;
    h->body_len += len;
    b[h->body_len] = 0;
    return len;
}

/* Keeps Cache-Control and Expires of the last response (after redirects). */
static size_t header_cb(char *data, size_t size, size_t n, void *u) {
    fed_http *h = u;
    size_t len = size * n;
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
        free(h->cache_control), free(h->expires);
        h->cache_control = h->expires = NULL;
        return len;
    }
    char **slot = NULL;
    size_t k = 0;
    if (len > 14 && !strncasecmp(data, "cache-control:", 14)) slot = &h->cache_control, k = 14;
    else if (len > 8 && !strncasecmp(data, "expires:", 8)) slot = &h->expires, k = 8;
    if (!slot) return len;
    while (k < len && (data[k] == ' ' || data[k] == '\t')) k++;
    size_t e = len;
    while (e > k && (data[e - 1] == '\r' || data[e - 1] == '\n' || data[e - 1] == ' ')) e--;
    if (slot == &h->cache_control && *slot) { /* several headers: one list */
        char *joined;
        if (asprintf(&joined, "%s, %.*s", *slot, (int)(e - k), data + k) >= 0)
            free(*slot), *slot = joined;
    } else {
        free(*slot);
        *slot = strndup(data + k, e - k);
    }
    return len;
}

static curl_socket_t opensocket_cb(void *u, curlsocktype purpose, struct curl_sockaddr *a) {
    fed_http *h = u;
    (void)purpose;
    h->attempts++;
    if (!fed_ip_allowed(h->cfg, &a->addr)) {
        h->refused++;
        h->blocked = h->refused == h->attempts; /* only if nothing else was tried */
        return CURL_SOCKET_BAD;
    }
    h->blocked = false;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int fed_http_prepare(fed_http *h, const cfg *c, long timeout_ms, long max_body) {
    pthread_once(&global_once, global_init);
    memset(h, 0, sizeof *h);
    h->cfg = c;
    h->max_body = max_body > 0 ? max_body : FED_MAX_RESPONSE_BYTES;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_mutex_lock(&G.mu);
    load_cas(c);
    pthread_mutex_unlock(&G.mu);
    CURL *e = h->easy = curl_easy_init();
    if (!e) return -1;
    curl_easy_setopt(e, CURLOPT_PRIVATE, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, G.share);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* http_proxy in the environment is not for us */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : FED_DEFAULT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pvyhs/" PVYHS_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, h);
    /* Verification is on unless the admin wrote federation_verify_certificates: false. */
    long verify = c->federation_verify_certificates ? 1L : 0L;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (G.store) { /* ours, instead of curl loading the bundle again */
        curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
    }
    return 0;
}

void fed_http_cleanup(fed_http *h) {
    if (h->easy) curl_easy_cleanup(h->easy);
    h->easy = NULL;
    curl_slist_free_all(h->connect_to);
    h->connect_to = NULL;
    free(h->body);
    free(h->cache_control);
    free(h->expires);
    h->body = h->cache_control = h->expires = NULL;
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

const char *fed_http_strerror(const fed_http *h) {
    if (h->blocked) return "refused by ip_range_blacklist (the address is not in ip_range_whitelist)";
    if (h->too_large) return "the response is too large";
    if (h->errbuf[0]) return h->errbuf;
    return curl_easy_strerror(h->rc);
}

/* ---- the curl thread ---------------------------------------------------------------- */

static void finish(fed_http *h, CURLcode rc) {
    pthread_mutex_lock(&h->mu);
    h->rc = rc;
    h->done = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static bool push(fed_http ***v, size_t *n, size_t *cap, fed_http *h) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        fed_http **nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return false;
        *v = nv, *cap = nc;
    }
    (*v)[(*n)++] = h;
    return true;
}

static void forget_active(fed_http *h) {
    for (size_t i = 0; i < G.n_active; i++)
        if (G.active[i] == h) {
            G.active[i] = G.active[--G.n_active];
            return;
        }
}

/* Hand over what callers queued; true when asked to stop. */
static bool take_pending(void) {
    pthread_mutex_lock(&G.mu);
    bool stop = G.stop;
    fed_http **p = G.pending;
    size_t n = G.n_pending;
    G.pending = NULL;
    G.n_pending = G.cap_pending = 0;
    pthread_mutex_unlock(&G.mu);
    for (size_t i = 0; i < n; i++) {
        if (stop) {
            finish(p[i], CURLE_ABORTED_BY_CALLBACK);
        } else if (!push(&G.active, &G.n_active, &G.cap_active, p[i])) {
            finish(p[i], CURLE_OUT_OF_MEMORY);
        } else if (curl_multi_add_handle(G.multi, p[i]->easy) != CURLM_OK) {
            G.n_active--;
            finish(p[i], CURLE_FAILED_INIT);
        }
    }
    free(p);
    return stop;
}

static void reap_done(void) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(G.multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        fed_http *h = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&h);
        curl_multi_remove_handle(G.multi, e);
        forget_active(h);
        finish(h, rc);
    }
}

static void *curl_thread(void *arg) {
    (void)arg;
    while (!take_pending()) {
        int running = 0;
        curl_multi_perform(G.multi, &running);
        reap_done();
        curl_multi_poll(G.multi, NULL, 0, 1000, NULL);
    }
    while (G.n_active) { /* stopping: whatever is still running fails */
        fed_http *h = G.active[--G.n_active];
        curl_multi_remove_handle(G.multi, h->easy);
        finish(h, CURLE_ABORTED_BY_CALLBACK);
    }
    return NULL;
}

CURLcode fed_http_perform(fed_http *h) {
    pthread_mutex_lock(&G.mu);
    if (!G.running) {
        G.stop = false;
        G.multi = curl_multi_init();
        if (!G.multi || pthread_create(&G.th, NULL, curl_thread, NULL) != 0) {
            if (G.multi) curl_multi_cleanup(G.multi);
            G.multi = NULL;
            pthread_mutex_unlock(&G.mu);
            return h->rc = CURLE_FAILED_INIT;
        }
        G.running = true;
    }
    bool ok = !G.stop && push(&G.pending, &G.n_pending, &G.cap_pending, h);
    if (ok) curl_multi_wakeup(G.multi);
    pthread_mutex_unlock(&G.mu);
    if (!ok) return h->rc = CURLE_ABORTED_BY_CALLBACK;
    pthread_mutex_lock(&h->mu);
    while (!h->done) pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    return h->rc;
}

void fed_http_shutdown(void) {
    pthread_mutex_lock(&G.mu);
    if (!G.running) {
        pthread_mutex_unlock(&G.mu);
        return;
    }
    G.stop = true;
    curl_multi_wakeup(G.multi);
    pthread_mutex_unlock(&G.mu);
    pthread_join(G.th, NULL);
    pthread_mutex_lock(&G.mu);
    curl_multi_cleanup(G.multi);
    G.multi = NULL;
    free(G.active);
    G.active = NULL;
    G.n_active = G.cap_active = 0;
    G.running = false;
    pthread_mutex_unlock(&G.mu);
}
