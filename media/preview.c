/* preview.c — GET …/media/preview_url: the OpenGraph data of a web page, for
 * link previews. Off unless url_preview_enabled (fetching tells the site
 * what is being discussed; clients should not ask for links in encrypted
 * rooms).
 *
 * The server fetches what a user names, so every connection — the page, each
 * redirect, the image — is checked against url_preview_ip_range_blacklist
 * (minus url_preview_ip_range_whitelist; 0.0.0.0 and :: always refused)
 * right before it is made, whatever name resolved to the address: a link
 * cannot turn the server against its own network. Pages are read up to
 * 10 MB (Synapse's max_spider_size); the page's og:image is fetched the same
 * way and stored as media, so clients get an mxc:// URI.
 *
 * url_preview_url_blacklist refuses URLs by their shape: the one asked for,
 * every redirect (followed here one hop at a time so each can be checked)
 * and the og:image. A preview is kept for an hour (preview_cache.c). */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/ip_range.h"
#include "homeserver/core/log.h"
#include "media_internal.h"

#define MAX_SPIDER (10L << 20)
#define MAX_REDIRECTS 5
#define MAX_KEYS 64

typedef struct fetch {
    const cfg *cf;
    char *body;
    size_t len;
    char *type;           /* Content-Type of the last response */
    bool too_large, blocked, url_blocked;
} fetch;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_body(char *p, size_t size, size_t n, void *u) {
    fetch *f = u;
    size_t len = size * n;
    if ((long)(f->len + len) > MAX_SPIDER) {
        f->too_large = true;
        return 0;
    }
    char *b = realloc(f->body, f->len + len + 1);
    if (!b) return 0;
    memcpy(b + f->len, p, len);
    f->body = b;
    f->len += len;
    b[f->len] = 0;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *u) {
    fetch *f = u;
    size_t len = size * n;
    if (len > 13 && !strncasecmp(p, "content-type:", 13)) {
        size_t k = 13, e = len;
        while (k < len && (p[k] == ' ' || p[k] == '\t')) k++;
        while (e > k && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' ')) e--;
        free(f->type);
        f->type = strndup(p + k, e - k);
    }
    return len;
}

static curl_socket_t on_socket(void *u, curlsocktype purpose, struct curl_sockaddr *a) {
    fetch *f = u;
    (void)purpose;
    static char *const always[] = {"0.0.0.0/32", "::/128"};
    const cfg_strlist *deny = &f->cf->url_preview_ip_range_blacklist;
    const cfg_strlist *allow = &f->cf->url_preview_ip_range_whitelist;
    if (!hs_ip_allowed(&a->addr, always, 2, NULL, 0) ||
        !hs_ip_allowed(&a->addr, deny->v, deny->n, allow->v, allow->n)) {
        f->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int blocked_url(hs_err *err) {
    return hs_err_set(err, 403, "M_UNKNOWN", "URL blocked by url pattern blocklist entry");
}

/* GET url into f, following redirects. 0, or -1 with err (403 blocked, 502
 * failed). */
static int get_url(const cfg *cf, const char *url, fetch *f, hs_err *err) {
    pthread_once(&curl_once, curl_init);
    memset(f, 0, sizeof *f);
    f->cf = cf;
    CURL *e = curl_easy_init();
    if (!e) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 15000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pvyhs (link preview)");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_socket); /* every connection */
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, f);
    struct curl_slist *h = curl_slist_append(NULL, "Accept-Language: en");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    CURLcode rc = CURLE_OK;
    long status = 0;
    char *next = strdup(url);
    for (int hop = 0; next && hop <= MAX_REDIRECTS; hop++) {
        if (hop && media_url_blocked(cf, next) != 0) {
            f->url_blocked = true;
            break;
        }
        free(f->body), free(f->type); /* a redirect's own body is not the page */
        f->body = f->type = NULL, f->len = 0;
        curl_easy_setopt(e, CURLOPT_URL, next);
        rc = curl_easy_perform(e);
        free(next), next = NULL;
        status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        char *loc = NULL;
        if (rc == CURLE_OK && status >= 300 && status < 400 &&
            curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            next = strdup(loc); /* absolute, resolved by libcurl */
    }
    if (next) rc = CURLE_TOO_MANY_REDIRECTS;
    free(next);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    if (f->url_blocked) return blocked_url(err);
    if (f->blocked)
        return hs_err_set(err, 403, "M_FORBIDDEN", "The URL leads to an address that previews may "
                          "not reach (url_preview_ip_range_blacklist)");
    if (f->too_large) return hs_err_set(err, 502, "M_TOO_LARGE", "The page is too large");
    if (rc != CURLE_OK || status < 200 || status >= 300)
        return hs_err_set(err, 502, "M_UNKNOWN", "Failed to download the URL (%s)",
                          rc != CURLE_OK ? curl_easy_strerror(rc) : "the site answered an error");
    return 0;
}

static void fetch_free(fetch *f) {
    free(f->body), free(f->type);
    memset(f, 0, sizeof *f);
}

/* ---- a tolerant reading of <meta> and <title> ---- */

static void decode_entities(char *s) {
    static const struct { const char *ent; char ch; } ents[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#39;", '\''},
        {"&apos;", '\''}, {"&nbsp;", ' '}};
    char *w = s;
    for (char *p = s; *p;) {
        bool done = false;
        for (size_t i = 0; *p == '&' && i < sizeof ents / sizeof *ents && !done; i++) {
            size_t n = strlen(ents[i].ent);
            if (!strncmp(p, ents[i].ent, n)) *w++ = ents[i].ch, p += n, done = true;
        }
        if (!done && p[0] == '&' && p[1] == '#') {
            char *end;
            long c = p[2] == 'x' ? strtol(p + 3, &end, 16) : strtol(p + 2, &end, 10);
            if (*end == ';' && c > 0 && c < 0x80) *w++ = (char)c, p = end + 1, done = true;
        }
        if (!done) *w++ = *p++;
    }
    *w = 0;
}

/* The value of attribute name inside the tag text [p, end), or NULL. */
static char *attr(const char *p, const char *end, const char *name) {
    size_t n = strlen(name);
    for (const char *q = p; q + n < end; q++) {
        if (strncasecmp(q, name, n) || (q > p && !strchr(" \t\r\n\"'", q[-1]))) continue;
        const char *v = q + n;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        if (v >= end || *v != '=') continue;
        v++;
        while (v < end && (*v == ' ' || *v == '\t')) v++;
        char quote = (*v == '"' || *v == '\'') ? *v++ : 0;
        const char *e = v;
        while (e < end && (quote ? *e != quote : !strchr(" \t\r\n>", *e))) e++;
        char *out = strndup(v, (size_t)(e - v));
        decode_entities(out);
        return out;
    }
    return NULL;
}

static void set_once(json_t *og, const char *key, char *value) {
    if (value && *value && !json_object_get(og, key) && json_object_size(og) < MAX_KEYS)
        json_object_set_new(og, key, json_string(value));
    free(value);
}

static json_t *parse_html(const char *html) {
    json_t *og = json_object();
    char *desc = NULL;
    for (const char *p = html; (p = strcasestr(p, "<meta")); p++) {
        const char *end = strchr(p, '>');
        if (!end) break;
        char *key = attr(p, end, "property");
        if (!key) key = attr(p, end, "name");
        char *content = attr(p, end, "content");
        if (key && !strncasecmp(key, "og:", 3))
            set_once(og, key, content), content = NULL; /* not UTF-8: json_string refuses it */
        else if (key && !strcasecmp(key, "description") && !desc) desc = content, content = NULL;
        free(key), free(content);
    }
    const char *t = strcasestr(html, "<title");
    if (t && (t = strchr(t, '>'))) {
        const char *e = strcasestr(t, "</title");
        if (e) {
            char *title = strndup(t + 1, (size_t)(e - t - 1));
            decode_entities(title);
            set_once(og, "og:title", title);
        }
    }
    set_once(og, "og:description", desc);
    /* Strings only: a page may put anything in its tags. */
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(og, tmp, k, v) if (!json_is_string(v) || !json_string_length(v))
        json_object_del(og, k);
    return og;
}

/* An og:image URL made absolute against the page, as a browser resolves
 * it (libcurl's URL API: absolute, scheme-relative, root-relative and
 * document-relative forms such as "test.png"). NULL when it can't be. */
static char *absolute(const char *page, const char *u) {
    CURLU *h = curl_url();
    char *url = NULL, *out = NULL;
    if (h && curl_url_set(h, CURLUPART_URL, page, 0) == CURLUE_OK &&
        curl_url_set(h, CURLUPART_URL, u, 0) == CURLUE_OK &&
        curl_url_get(h, CURLUPART_URL, &url, 0) == CURLUE_OK && url &&
        (!strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8)))
        out = strdup(url);
    curl_free(url);
    curl_url_cleanup(h);
    return out;
}

/* Keep an image as media of the user who asked; describe it in og. */
static void store_image(hs_req *r, const media_keys *k, const fetch *img, json_t *og) {
    hs_err err = {0};
    if (!img->type || strncasecmp(img->type, "image/", 6)) return;
    media_writer *w = media_writer_new(r->srv->cfg->media_store_path, k, &err);
    if (!w) return;
    char id[MEDIA_ID_LEN + 1], *uri;
    media_random_id(id);
    media_new n = {.origin = r->srv->cfg->server_name, .media_id = id, .user_id = r->user_id,
                   .content_type = img->type, .authenticated = true};
    if (media_writer_write(w, img->body, img->len, &err) == 0 &&
        media_writer_finish(w, &err) == 0 && media_store_file(r->srv, k, w, &n, &err) == 0 &&
        asprintf(&uri, "mxc://%s/%s", r->srv->cfg->server_name, id) >= 0) {
        json_object_set_new(og, "og:image", json_string(uri));
        json_object_set_new(og, "og:image:type", json_string(img->type));
        json_object_set_new(og, "matrix:image:size", json_integer((json_int_t)img->len));
        int iw, ih;
        if (media_image_size(img->body, img->len, &iw, &ih) == 0) {
            json_object_set_new(og, "og:image:width", json_integer(iw));
            json_object_set_new(og, "og:image:height", json_integer(ih));
        }
        free(uri);
    }
    if (err.status) hs_warn("media: cannot keep a preview image: %s", err.msg);
    media_writer_free(w);
}

int media_preview_url(hs_req *r, json_t **out, hs_err *err) {
    const cfg *cf = r->srv->cfg;
    if (!cf->url_preview_enabled) /* as Synapse: no such endpoint */
        return hs_err_set(err, 404, "M_UNRECOGNIZED", "URL previews are disabled on this server");
    const char *url = hs_req_query(r, "url");
    if (!url || !*url) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing string query parameter 'url'");
    if (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8))
        return hs_err_set(err, 400, "M_UNKNOWN", "URL scheme must be http or https");
    int blocked = media_url_blocked(cf, url);
    if (blocked < 0) return hs_err_set(err, 400, "M_UNKNOWN", "Invalid URL");
    if (blocked) return blocked_url(err);
    const media_keys *k = media_keys_get(r->srv, err);
    if (!k) return -1;
    long long now = hs_now_ms();
    if ((*out = media_preview_cached(r->srv, k, url, now))) return 200;
    fetch page;
    if (get_url(cf, url, &page, err) < 0) {
        fetch_free(&page);
        return -1;
    }
    json_t *og;
    if (page.type && !strncasecmp(page.type, "image/", 6)) {
        og = json_object(); /* the link is an image: it is its own preview */
        store_image(r, k, &page, og);
    } else if (page.type && (strcasestr(page.type, "html") || strcasestr(page.type, "xml"))) {
        og = parse_html(page.body ? page.body : "");
        const char *img_url = json_string_value(json_object_get(og, "og:image"));
        char *abs = img_url ? absolute(url, img_url) : NULL;
        json_object_del(og, "og:image"); /* replaced by an mxc URI, or dropped */
        fetch img = {0};
        hs_err ierr = {0};
        /* The image is fetched like the page, blacklists included; without
         * it the preview is still the page's text. */
        if (abs && media_url_blocked(cf, abs) == 0 && get_url(cf, abs, &img, &ierr) == 0)
            store_image(r, k, &img, og);
        if (abs) fetch_free(&img);
        free(abs);
    } else {
        og = json_object(); /* other documents: nothing to show */
    }
    fetch_free(&page);
    media_preview_remember(r->srv, k, url, og, now);
    *out = og;
    return 200;
}
