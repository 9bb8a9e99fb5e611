/* download.c — GET …/media/download/{serverName}/{mediaId}[/{fileName}]:
 * the authenticated endpoint and the deprecated unauthenticated one, which
 * serves only media from before the freeze (enable_authenticated_media).
 *
 * Files stream from disk, decrypted one message at a time as libmicrohttpd
 * asks for more, so a download of any size uses constant memory. A download
 * of an mxc URI created but not yet uploaded waits up to timeout_ms for the
 * upload (parked, no thread held), then answers 504 M_NOT_YET_UPLOADED. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "homeserver/http/timer.h"
#include "media_internal.h"

#define DEFAULT_WAIT_MS 20000LL
#define MAX_WAIT_MS 60000LL /* the spec asks for a cap; Synapse's */
#define POLL_MS 250

/* A parked request waiting for an upload; the timer re-runs the handler. */
typedef struct dl_wait {
    pthread_mutex_t mu;
    atomic_int refs; /* the request and, while armed, the timer */
    hs_req *r;
    hs_timer *timer;
    bool parked, fired;
    long long deadline;
} dl_wait;

static void wait_unref(dl_wait *w) {
    if (atomic_fetch_sub(&w->refs, 1) == 1) {
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

static void on_poll(void *arg) {
    dl_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->fired = true;
    if (w->parked) {
        w->parked = false;
        hs_req_resume(w->r);
    }
    pthread_mutex_unlock(&w->mu);
    wait_unref(w);
}

static void disarm(dl_wait *w) {
    if (w->timer && hs_timer_cancel(w->timer)) wait_unref(w);
    w->timer = NULL;
}

static void wait_free(void *arg) {
    dl_wait *w = arg;
    disarm(w);
    wait_unref(w);
}

/* Park until the next poll. False if the timer fired already (check again). */
static bool park(hs_req *r, dl_wait *w) {
    long long next = hs_now_ms() + POLL_MS;
    disarm(w); /* every timer is cancelled once, which frees it */
    w->fired = false;
    atomic_fetch_add(&w->refs, 1);
    w->timer = hs_timer_add(next < w->deadline ? next : w->deadline, on_poll, w);
    pthread_mutex_lock(&w->mu);
    bool parked = !w->fired;
    if (parked) {
        w->parked = true;
        hs_req_suspend(r);
    }
    pthread_mutex_unlock(&w->mu);
    return parked;
}

static long long wait_ms(hs_req *r) {
    const char *t = hs_req_query(r, "timeout_ms");
    long long ms = t ? atoll(t) : DEFAULT_WAIT_MS;
    return ms < 0 ? 0 : ms > MAX_WAIT_MS ? MAX_WAIT_MS : ms;
}

/* Not uploaded yet: 0 after parking, or -1 with the error to answer. */
static int wait_for_upload(hs_req *r, const media_info *m, hs_err *err) {
    dl_wait *w = r->ctx;
    long long now = hs_now_ms();
    if (m->created_ts < now - r->srv->cfg->unused_expiration_time)
        return hs_err_set(err, 404, "M_NOT_FOUND", "Not found");
    if (!w) {
        w = calloc(1, sizeof *w);
        pthread_mutex_init(&w->mu, NULL);
        atomic_init(&w->refs, 1);
        w->r = r;
        w->deadline = now + wait_ms(r);
        r->ctx = w;
        r->ctx_free = wait_free;
    }
    if (now >= w->deadline || atomic_load(&r->srv->stopping))
        return hs_err_set(err, 504, "M_NOT_YET_UPLOADED", "Content has not yet been uploaded");
    return park(r, w) ? 0 : 1;
}

int media_find_for_request(hs_req *r, const media_keys *k, enum media_via via, const char *server,
                           const char *id, media_info *m, hs_err *err) {
    if (r->ctx) disarm(r->ctx); /* resumed by the poll */
    if (!media_id_valid(id)) return hs_err_set(err, 404, "M_NOT_FOUND", "Not found");
    bool fetched = false;
    for (;;) {
        db_conn *c = db_acquire(r->srv->db, err);
        if (!c) return -1;
        int found = media_lookup(c, k, server, id, m, err);
        if (found > 0 && m->uploaded && !m->quarantined) media_touch(c, server, id);
        db_release(r->srv->db, c);
        if (found < 0) return -1;
        if (!found && !fetched && !media_is_local(r->srv, server) && via != MEDIA_VIA_FEDERATION) {
            /* Another server's media, not cached yet: fetch it (this thread
             * waits for the transfer), then look again. */
            if (media_fetch_remote(r->srv, k, server, id, err) < 0) return -1;
            fetched = true;
            continue;
        }
        int rc = 1;
        if (!found || m->quarantined) /* quarantined media is refused to everyone */
            rc = hs_err_set(err, 404, "M_NOT_FOUND", "Not found");
        else if (via == MEDIA_VIA_LEGACY && m->authenticated &&
                 r->srv->cfg->enable_authenticated_media)
            rc = hs_err_set(err, 404, "M_NOT_FOUND", "Not found"); /* after the freeze */
        else if (!m->uploaded && (rc = wait_for_upload(r, m, err)) == 1) {
            media_info_clear(m);
            continue; /* the poll fired at once: look again */
        }
        if (rc <= 0) media_info_clear(m);
        return rc;
    }
}

static ssize_t read_cb(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    ssize_t n = media_reader_read(cls, buf, max);
    if (n > 0) return n;
    if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    hs_error("media: a stored file does not decrypt (damaged or altered); download cut off");
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void free_cb(void *cls) { media_reader_free(cls); }

/* A federation answer: the frame's prefix, the file, the frame's suffix. */
typedef struct framed {
    media_reader *rd;
    char *prefix, *suffix;
    size_t plen, slen, pos; /* pos: within prefix, then (after the file) suffix */
    bool in_file, in_suffix;
} framed;

static ssize_t framed_cb(void *cls, uint64_t at, char *buf, size_t max) {
    (void)at;
    framed *f = cls;
    if (!f->in_file && !f->in_suffix) {
        size_t n = f->plen - f->pos < max ? f->plen - f->pos : max;
        memcpy(buf, f->prefix + f->pos, n);
        if ((f->pos += n) == f->plen) f->in_file = true, f->pos = 0;
        return (ssize_t)n;
    }
    if (f->in_file) {
        ssize_t n = read_cb(f->rd, 0, buf, max);
        if (n != MHD_CONTENT_READER_END_OF_STREAM) return n;
        f->in_file = false, f->in_suffix = true;
    }
    if (f->pos == f->slen) return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = f->slen - f->pos < max ? f->slen - f->pos : max;
    memcpy(buf, f->suffix + f->pos, n);
    f->pos += n;
    return (ssize_t)n;
}

static void framed_free(void *cls) {
    framed *f = cls;
    media_reader_free(f->rd);
    free(f->prefix), free(f->suffix);
    free(f);
}

void media_multipart_frame(const char *content_type, const char *disposition, char **prefix,
                           char **suffix, char **outer_type) {
    unsigned char rnd[16];
    char b[33];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(b, sizeof b, rnd, sizeof rnd);
    /* The spec's two parts: metadata (always {} so far), then the content. */
    if (asprintf(prefix, "--%s\r\nContent-Type: application/json\r\n\r\n{}\r\n--%s\r\n"
                 "Content-Type: %s\r\nContent-Disposition: %s\r\n\r\n", b, b, content_type,
                 disposition) < 0)
        *prefix = NULL;
    if (asprintf(suffix, "\r\n--%s--\r\n", b) < 0) *suffix = NULL;
    if (asprintf(outer_type, "multipart/mixed; boundary=%s", b) < 0) *outer_type = NULL;
}

/* Text types get a charset, as the spec allows and Synapse does. */
static char *served_type(const char *t) {
    char *out;
    if (!t || !*t) return strdup("application/octet-stream");
    if (!strncasecmp(t, "text/", 5) && !strcasestr(t, "charset")) {
        if (asprintf(&out, "%s; charset=utf-8", t) < 0) return NULL;
        return out;
    }
    return strdup(t);
}

/* 416 for a range past the end, saying how long the file is. */
static int unsatisfiable(hs_req *r, long long length, hs_err *err) {
    static const char body[] =
        "{\"errcode\":\"M_UNKNOWN\",\"error\":\"Requested range not satisfiable\"}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    char cr[64];
    snprintf(cr, sizeof cr, "bytes */%lld", length);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Content-Range", cr);
    MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    media_safe_headers(resp);
    r->custom = resp;
    return 416;
}

int media_respond_file(hs_req *r, const unsigned char *address, const unsigned char *key,
                       long long length, const char *content_type, const char *disposition,
                       bool multipart, bool ranges, hs_err *err) {
    long long first = 0, last = length - 1;
    int ranged = 0;
    /* If-Range names a version we never gave out (no ETag or Last-Modified
     * here), so with it the answer is the whole file, as RFC 9110 asks. */
    if (ranges && !multipart && !hs_req_header(r, "If-Range"))
        ranged = media_parse_range(hs_req_header(r, "Range"), length, &first, &last);
    if (ranged < 0) return unsatisfiable(r, length, err);
    media_reader *rd = media_reader_open(r->srv->cfg->media_store_path, address, key, err);
    if (!rd) return -1;
    if (ranged && media_reader_seek(rd, first) < 0) {
        media_reader_free(rd);
        hs_error("media: a stored file does not decrypt (damaged or altered)");
        return hs_err_set(err, 500, "M_UNKNOWN", "the stored file is damaged");
    }
    char *type = served_type(content_type), *outer = NULL;
    struct MHD_Response *resp;
    if (multipart) {
        framed *f = calloc(1, sizeof *f);
        f->rd = rd;
        media_multipart_frame(type, disposition, &f->prefix, &f->suffix, &outer);
        f->plen = strlen(f->prefix), f->slen = strlen(f->suffix);
        resp = MHD_create_response_from_callback((uint64_t)length + f->plen + f->slen,
                                                 MEDIA_CHUNK, framed_cb, f, framed_free);
        if (!resp) framed_free(f);
    } else {
        uint64_t size = ranged ? (uint64_t)(last - first + 1) : (uint64_t)length;
        resp = MHD_create_response_from_callback(size, MEDIA_CHUNK, read_cb, rd, free_cb);
        if (!resp) media_reader_free(rd);
    }
    if (!resp) {
        free(type), free(outer);
        return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    }
    MHD_add_response_header(resp, "Content-Type", multipart ? outer : type);
    if (!multipart) MHD_add_response_header(resp, "Content-Disposition", disposition);
    if (ranges && !multipart) MHD_add_response_header(resp, "Accept-Ranges", "bytes");
    if (ranged) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", first, last, length);
        MHD_add_response_header(resp, "Content-Range", cr);
    }
    media_safe_headers(resp);
    free(type), free(outer);
    r->custom = resp;
    return ranged ? 206 : 200;
}

static int download(hs_req *r, enum media_via via, const char *server, const char *id,
                    hs_err *err) {
    const media_keys *k = media_keys_get(r->srv, err);
    if (!k) return -1;
    media_info m;
    int rc = media_find_for_request(r, k, via, server, id, &m, err);
    if (rc <= 0) return rc < 0 ? -1 : HS_SUSPENDED;
    /* A name in the path overrides the uploaded one (the spec's …/{fileName}). */
    const char *name = via != MEDIA_VIA_FEDERATION && r->n_params > 2 && *r->params[2]
                           ? r->params[2] : m.upload_name;
    char *disp = media_disposition(media_inline_type(m.content_type), name);
    rc = media_respond_file(r, m.address, m.key, m.length, m.content_type, disp,
                            via == MEDIA_VIA_FEDERATION, via != MEDIA_VIA_FEDERATION, err);
    free(disp);
    media_info_clear(&m);
    media_retention_tick(r->srv);
    return rc;
}

int media_download(hs_req *r, json_t **out, hs_err *err) {
    (void)out;
    return download(r, MEDIA_VIA_CLIENT, r->params[0], r->params[1], err);
}

int media_download_legacy(hs_req *r, json_t **out, hs_err *err) {
    (void)out;
    const char *remote = hs_req_query(r, "allow_remote");
    if (remote && !strcmp(remote, "false") && !media_is_local(r->srv, r->params[0]))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Not found");
    return download(r, MEDIA_VIA_LEGACY, r->params[0], r->params[1], err);
}

/* GET /_matrix/federation/v1/media/download/{mediaId} (X-Matrix checked by
 * the HTTP layer): our own media only, never our cache of others'. */
int media_fed_download(hs_req *r, json_t **out, hs_err *err) {
    (void)out;
    return download(r, MEDIA_VIA_FEDERATION, r->srv->cfg->server_name, r->params[0], err);
}
