/* remote.c — other servers' media for local users: fetched over
 * authenticated federation (GET /_matrix/federation/v1/media/download, a
 * multipart/mixed answer), encrypted into the store as it arrives, recorded
 * as a remote media row, then served like local media.
 *
 * The federation transport (federation/) returns JSON bodies only, buffered,
 * so this file drives libcurl itself with the transport's public pieces:
 * discovery (fed_resolve_server), X-Matrix signing (fed_xmatrix_sign), the
 * domain whitelist and the outbound IP policy (fed_ip_allowed, checked on
 * every connection, a Location given in the multipart answer included).
 * Servers that predate federation media (404 M_UNRECOGNIZED) are asked on the
 * deprecated /_matrix/media/v3/download, as Synapse does. Larger than
 * max_upload_size: 502 M_TOO_LARGE, as the spec asks. The request's thread
 * waits for the transfer (up to two minutes). */
#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "federation/federation.h"
#include "homeserver/core/log.h"
#include "media_internal.h"

/* ---- the multipart/mixed reader --------------------------------------------- */

enum mp_state { MP_PREAMBLE, MP_HEADERS, MP_BODY, MP_DONE };

typedef struct pull {
    hs_server *srv;
    media_writer *w;
    long long max;
    /* response headers */
    char *type, *disposition;
    /* multipart: the delimiter "\r\n--boundary", which part, what is held */
    bool multipart;
    char *delim;
    size_t dlen;
    enum mp_state st;
    int part;           /* 1: metadata, 2: the content */
    char *hold;         /* bytes not yet known to be outside a delimiter */
    size_t hlen;
    char *part_type, *part_disp, *location;
    long status;        /* of the response being received */
    char errbody[512];  /* the start of an error answer, for its errcode */
    size_t errlen;
    bool decided;       /* multipart or not, known from the first body byte */
    bool too_large, blocked;
    hs_err err;
} pull;

static bool start_multipart(pull *p);

static int emit(pull *p, const char *data, size_t n) {
    if ((p->multipart && p->part != 2) || !n) return 0;
    if (media_writer_length(p->w) + (long long)n > p->max) {
        p->too_large = true;
        return -1;
    }
    return media_writer_write(p->w, data, n, &p->err);
}

static char *header_value(const char *line, size_t len, const char *name) {
    size_t k = strlen(name);
    if (len <= k || strncasecmp(line, name, k)) return NULL;
    while (k < len && (line[k] == ' ' || line[k] == '\t')) k++;
    size_t e = len;
    while (e > k && (line[e - 1] == '\r' || line[e - 1] == '\n' || line[e - 1] == ' ')) e--;
    return strndup(line + k, e - k);
}

/* One header line of a part (without its CRLF). */
static void part_header(pull *p, const char *line, size_t len) {
    char *v;
    if (p->part != 2) return;
    if ((v = header_value(line, len, "content-type:"))) free(p->part_type), p->part_type = v;
    else if ((v = header_value(line, len, "content-disposition:"))) free(p->part_disp), p->part_disp = v;
    else if ((v = header_value(line, len, "location:"))) free(p->location), p->location = v;
}

/* Feed what is held through the state machine. -1 stops the transfer. */
static int mp_run(pull *p, bool final) {
    for (;;) {
        char *h = p->hold;
        size_t n = p->hlen, used = 0;
        if (p->st == MP_DONE) return 0;
        if (p->st == MP_PREAMBLE) { /* "--boundary" opens the first part */
            char *d = memmem(h, n, p->delim + 2, p->dlen - 2);
            if (!d) return 0;
            char *eol = memmem(d, n - (size_t)(d - h), "\r\n", 2);
            if (!eol) return 0;
            used = (size_t)(eol + 2 - h);
            p->st = MP_HEADERS, p->part++;
        } else if (p->st == MP_HEADERS) {
            char *eol = memmem(h, n, "\r\n", 2);
            if (!eol) return 0;
            if (eol == h) p->st = MP_BODY; /* the blank line */
            else part_header(p, h, (size_t)(eol - h));
            used = (size_t)(eol + 2 - h);
        } else { /* MP_BODY: up to the next delimiter */
            char *d = memmem(h, n, p->delim, p->dlen);
            size_t keep = d ? 0 : (n < p->dlen ? n : p->dlen - 1);
            size_t body = d ? (size_t)(d - h) : n - keep;
            if (emit(p, h, body) < 0) return -1;
            used = body;
            if (d) {
                size_t after = (size_t)(d - h) + p->dlen;
                if (n - after < 2) { /* need to see "--" or CRLF after it */
                    memmove(p->hold, d, n - (size_t)(d - h));
                    p->hlen = n - (size_t)(d - h);
                    return final ? -1 : 0;
                }
                bool closing = !memcmp(h + after, "--", 2);
                used = after + 2;
                p->st = closing || p->part >= 2 ? MP_DONE : MP_HEADERS;
                if (!closing) p->part++;
            } else {
                memmove(p->hold, h + used, n - used);
                p->hlen = n - used;
                return 0;
            }
        }
        memmove(p->hold, h + used, n - used);
        p->hlen = n - used;
    }
}

static size_t on_body(char *data, size_t size, size_t n, void *u) {
    pull *p = u;
    size_t len = size * n;
    if (p->status < 200 || p->status >= 300) { /* an error answer: not content */
        size_t room = sizeof p->errbody - 1 - p->errlen, k = len < room ? len : room;
        memcpy(p->errbody + p->errlen, data, k);
        p->errlen += k;
        p->errbody[p->errlen] = 0;
        return len;
    }
    if (!p->decided) p->decided = true, start_multipart(p);
    if (!p->multipart) return emit(p, data, len) < 0 ? 0 : len;
    if (p->hlen + len > 1 << 20 && p->st != MP_BODY) return 0; /* headers without end */
    char *b = realloc(p->hold, p->hlen + len);
    if (!b) return 0;
    memcpy(b + p->hlen, data, len);
    p->hold = b, p->hlen += len;
    return mp_run(p, false) < 0 ? 0 : len;
}

static size_t on_header(char *line, size_t size, size_t n, void *u) {
    pull *p = u;
    size_t len = size * n;
    char *v;
    if (len > 9 && !strncmp(line, "HTTP/", 5)) { /* a new response (after a redirect too) */
        p->status = atol(line + strcspn(line, " "));
        free(p->type), free(p->disposition);
        p->type = p->disposition = NULL;
        return len;
    }
    if ((v = header_value(line, len, "content-type:"))) free(p->type), p->type = v;
    else if ((v = header_value(line, len, "content-disposition:")))
        free(p->disposition), p->disposition = v;
    return len;
}

/* ---- transfers ------------------------------------------------------------------- */

static pthread_once_t cas_once = PTHREAD_ONCE_INIT;
static STACK_OF(X509) *cas;
static const cfg *cas_cfg;

static void load_cas(void) {
    for (size_t i = 0; i < cas_cfg->federation_custom_ca_list.n; i++) {
        FILE *f = fopen(cas_cfg->federation_custom_ca_list.v[i], "r");
        X509 *x;
        if (!cas) cas = sk_X509_new_null();
        while (f && (x = PEM_read_X509(f, NULL, NULL, NULL))) sk_X509_push(cas, x);
        if (f) fclose(f);
    }
}

static CURLcode ssl_ctx_cb(CURL *e, void *ctx, void *u) {
    (void)e, (void)u;
    X509_STORE *st = SSL_CTX_get_cert_store((SSL_CTX *)ctx);
    for (int i = 0; cas && i < sk_X509_num(cas); i++) X509_STORE_add_cert(st, sk_X509_value(cas, i));
    return CURLE_OK;
}

static curl_socket_t on_socket(void *u, curlsocktype purpose, struct curl_sockaddr *a) {
    pull *p = u;
    (void)purpose;
    if (!fed_ip_allowed(p->srv->cfg, &a->addr)) {
        p->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* GET url (with Host, Authorization and a connect-to target when given). */
static long transfer(pull *p, const char *url, const char *host_hdr, const char *auth,
                     const char *connect_to) {
    const cfg *cf = p->srv->cfg;
    cas_cfg = cf;
    pthread_once(&cas_once, load_cas);
    CURL *e = curl_easy_init();
    struct curl_slist *hdrs = NULL, *ct = NULL;
    char buf[1200];
    if (host_hdr) snprintf(buf, sizeof buf, "Host: %s", host_hdr), hdrs = curl_slist_append(hdrs, buf);
    if (auth) snprintf(buf, sizeof buf, "Authorization: %s", auth), hdrs = curl_slist_append(hdrs, buf);
    if (connect_to) ct = curl_slist_append(NULL, connect_to);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, auth ? "https" : "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, auth ? 0L : 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 120000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 20000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    if (ct) curl_easy_setopt(e, CURLOPT_CONNECT_TO, ct);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, p);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, p);
    long verify = cf->federation_verify_certificates ? 1L : 0L;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (cas) curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
    CURLcode rc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(ct);
    if (rc != CURLE_OK && !p->too_large && !p->err.status)
        hs_debug("media: fetching %s failed: %s", url, curl_easy_strerror(rc));
    return rc == CURLE_OK ? status : -1;
}

static void pull_reset(pull *p) {
    free(p->type), free(p->disposition), free(p->hold), free(p->part_type), free(p->part_disp);
    free(p->location), free(p->delim);
    p->type = p->disposition = p->hold = p->part_type = p->part_disp = p->location = NULL;
    p->delim = NULL;
    p->hlen = 0, p->part = 0, p->st = MP_PREAMBLE, p->multipart = p->decided = false;
    p->errlen = 0, p->errbody[0] = 0;
}

/* The answer says the endpoint is unknown, not the media (Synapse's
 * is_unknown_endpoint): 404 or 405 with M_UNRECOGNIZED or a body that is not
 * JSON (older servers), or 400 M_UNRECOGNIZED (older Synapse). A 404
 * M_NOT_FOUND is an answer about the media and ends the search. */
static bool unknown_endpoint(const pull *p, long status) {
    const char *b = p->errbody;
    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n') b++;
    bool unrecognized = strstr(b, "\"M_UNRECOGNIZED\"") != NULL;
    if (status == 404 || status == 405) return *b != '{' || unrecognized;
    return status == 400 && unrecognized;
}

/* Take the boundary from a multipart/mixed Content-Type. */
static bool start_multipart(pull *p) {
    const char *b = p->type ? strcasestr(p->type, "boundary=") : NULL;
    if (!p->type || strncasecmp(p->type, "multipart/mixed", 15) || !b) return false;
    b += 9;
    size_t n = *b == '"' ? strcspn(++b, "\"") : strcspn(b, "; ");
    if (!n || n > 200) return false;
    if (asprintf(&p->delim, "\r\n--%.*s", (int)n, b) < 0) return false;
    p->dlen = strlen(p->delim);
    p->multipart = true;
    return true;
}

/* The filename of a Content-Disposition, %-decoded for filename*=. */
static char *disposition_name(const char *d) {
    const char *f;
    if (!d) return NULL;
    if ((f = strcasestr(d, "filename*=utf-8''"))) {
        f += 17;
        size_t n = strcspn(f, "; ");
        char *out = malloc(n + 1), *w = out;
        for (size_t i = 0; i < n; i++) {
            unsigned hi;
            if (f[i] == '%' && i + 2 < n + 1 && sscanf(f + i + 1, "%2x", &hi) == 1)
                *w++ = (char)hi, i += 2;
            else
                *w++ = f[i];
        }
        *w = 0;
        return out;
    }
    if ((f = strcasestr(d, "filename="))) {
        f += 9;
        if (*f == '"') return strndup(f + 1, strcspn(f + 1, "\""));
        return strndup(f, strcspn(f, "; "));
    }
    return NULL;
}

/* Ask origin over federation; if it does not know the endpoint, on the old one.
 * Returns the final HTTP status, or -1 when no answer came. */
static long ask(pull *p, const char *origin, const char *id) {
    fed_target t;
    hs_err err = {0};
    if (fed_resolve_server(p->srv, origin, &t, &err) < 0) return -1;
    char host[300], url[2048], connect_to[700] = "", pq[600];
    snprintf(host, sizeof host, strchr(t.tls_host, ':') ? "[%s]" : "%s", t.tls_host);
    if (t.connect_host[0])
        snprintf(connect_to, sizeof connect_to, "%s:%d:%s%s%s:%d", host, t.port,
                 strchr(t.connect_host, ':') ? "[" : "", t.connect_host,
                 strchr(t.connect_host, ':') ? "]" : "", t.port);
    snprintf(pq, sizeof pq, "/_matrix/federation/v1/media/download/%s?timeout_ms=20000", id);
    char *auth = fed_xmatrix_sign(p->srv, origin, "GET", pq, NULL, &err);
    if (!auth) return -1;
    snprintf(url, sizeof url, "https://%s:%d%s", host, t.port, pq);
    long status = transfer(p, url, t.host_header, auth, connect_to[0] ? connect_to : NULL);
    free(auth);
    if (unknown_endpoint(p, status)) {
        /* An older server: the deprecated endpoint, unauthenticated. */
        pull_reset(p);
        snprintf(pq, sizeof pq, "/_matrix/media/v3/download/%s/%s?allow_remote=false", origin, id);
        snprintf(url, sizeof url, "https://%s:%d%s", host, t.port, pq);
        status = transfer(p, url, t.host_header, NULL, connect_to[0] ? connect_to : NULL);
    }
    return status;
}

int media_fetch_remote(hs_server *srv, const media_keys *k, const char *origin, const char *id,
                       hs_err *err) {
    if (!fed_domain_allowed(srv->cfg, origin))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Not found (federation with %s is not allowed)",
                          origin);
    pull p = {.srv = srv, .max = srv->cfg->max_upload_size};
    p.w = media_writer_new(srv->cfg->media_store_path, k, err);
    if (!p.w) return -1;
    long status = ask(&p, origin, id);
    if (status >= 200 && status < 300 && p.multipart && p.st == MP_DONE && p.location &&
        media_writer_length(p.w) == 0) {
        /* The content is elsewhere (a CDN): an unsigned GET, same IP policy. */
        char *loc = strdup(p.location), *disp = p.part_disp ? strdup(p.part_disp) : NULL;
        pull_reset(&p);
        status = transfer(&p, loc, NULL, NULL, NULL);
        if (!p.disposition) p.disposition = disp, disp = NULL;
        free(loc), free(disp);
    }
    int rc = 0;
    if (p.too_large) rc = hs_err_set(err, 502, "M_TOO_LARGE", "Content is too large to serve");
    else if (p.blocked) rc = hs_err_set(err, 502, "M_UNKNOWN", "%s is on a blocked address", origin);
    else if (status == 404) rc = hs_err_set(err, 404, "M_NOT_FOUND", "Not found");
    else if (status < 200 || status >= 300)
        rc = hs_err_set(err, 502, "M_UNKNOWN", "Failed to fetch the media from %s", origin);
    else if (p.err.status) rc = hs_err_set(err, 500, "M_UNKNOWN", "%s", p.err.msg);
    else if (p.multipart && p.st != MP_DONE)
        rc = hs_err_set(err, 502, "M_UNKNOWN", "%s sent a malformed multipart answer", origin);
    if (rc == 0) {
        const char *type = p.multipart ? p.part_type : p.type;
        char *name = disposition_name(p.multipart ? p.part_disp : p.disposition);
        media_new n = {.origin = origin, .media_id = id, .content_type = type,
                       .upload_name = name, .remote = true,
                       .authenticated = srv->cfg->enable_authenticated_media};
        if (media_writer_finish(p.w, err) < 0 || media_store_file(srv, k, p.w, &n, err) < 0)
            rc = err->status == 409 ? 0 : -1; /* 409: someone else cached it meanwhile */
        free(name);
    }
    media_writer_free(p.w);
    pull_reset(&p);
    return rc;
}
