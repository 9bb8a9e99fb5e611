/* thumbnail.c — GET …/media/thumbnail/{serverName}/{mediaId}, scaled by
 * libvips in a separate process (pvyhs-thumbnail, media/thumbnailer/), so the
 * server neither maps libvips' many libraries nor decodes hostile images.
 *
 * Only JPEG, PNG, GIF and WebP uploads are decoded; anything else (and so
 * every end-to-end encrypted attachment, which clients upload as
 * application/octet-stream) gets 400 and is never parsed. Thumbnails are made
 * on first request at one of thumbnail_sizes (or, with dynamic_thumbnails, at
 * the size asked), then stored encrypted like any file and served again.
 * Output follows Synapse: JPEG for JPEG and WebP, PNG for PNG and GIF; an
 * animated GIF or WebP asked for with animated=true gives an animated WebP,
 * as the spec prefers. EXIF and other metadata are stripped. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "media_internal.h"

#define MAX_THUMB_SOURCE (100LL << 20) /* files larger than this are not decoded */
#define MAX_DYNAMIC_SIDE 2000
#define MAX_THUMB_OUTPUT (64 << 20)
#define THUMB_TIMEOUT_MS 30000

typedef struct thumb_req {
    int width, height;
    bool crop, animated;
} thumb_req;

/* Decoding happens in pvyhs-thumbnail (media/thumbnailer/): run it on src
 * with argv, collect its stdout. 0 with *status its exit status, or -1. */
static int run_tool(const char *const *args, const void *src, size_t len, unsigned char **out,
                    size_t *out_len, int *status) {
    char tool[4096];
    const char *env = getenv("PVYHS_THUMBNAILER");
    if (env && *env) {
        snprintf(tool, sizeof tool, "%s", env);
    } else {
        ssize_t n = readlink("/proc/self/exe", tool, sizeof tool - 32);
        if (n <= 0) return -1;
        tool[n] = 0;
        char *slash = strrchr(tool, '/');
        snprintf(slash ? slash + 1 : tool, 32, "pvyhs-thumbnail");
    }
    char *argv[12] = {tool};
    for (int i = 0; args[i] && i < 10; i++) argv[i + 1] = (char *)args[i];
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) < 0) return -1;
    if (pipe2(outp, O_CLOEXEC) < 0) return close(in[0]), close(in[1]), -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    pid_t pid;
    extern char **environ;
    int rc = posix_spawn(&pid, tool, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]), close(outp[1]);
    if (rc != 0) {
        close(in[1]), close(outp[0]);
        hs_error("media: cannot run %s: %s", tool, strerror(rc));
        return -1;
    }
    /* Feed the image and read the answer together, so neither pipe fills. */
    size_t sent = 0, cap = 1 << 16, got = 0;
    unsigned char *buf = malloc(cap);
    long long deadline = hs_now_ms() + THUMB_TIMEOUT_MS;
    bool in_open = true, ok = true;
    while (ok) {
        struct pollfd p[2] = {{outp[0], POLLIN, 0}, {in_open ? in[1] : -1, POLLOUT, 0}};
        long long left = deadline - hs_now_ms();
        if (left <= 0 || poll(p, 2, (int)left) <= 0) { ok = false; break; }
        if (in_open && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = write(in[1], (const char *)src + sent, len - sent);
            if (w > 0) sent += (size_t)w;
            if (w <= 0 || sent == len) close(in[1]), in_open = false;
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (got == cap) buf = realloc(buf, cap *= 2);
            ssize_t r = read(outp[0], buf + got, cap - got);
            if (r <= 0) break; /* the tool closed its output: done */
            got += (size_t)r;
            if (got > MAX_THUMB_OUTPUT) ok = false;
        }
    }
    if (in_open) close(in[1]);
    close(outp[0]);
    if (!ok) kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (!ok || !WIFEXITED(st)) {
        free(buf);
        hs_warn("media: the thumbnailer %s", ok ? "crashed" : "timed out or wrote too much");
        return -1;
    }
    *status = WEXITSTATUS(st);
    *out = buf, *out_len = got;
    return 0;
}

int media_image_size(const void *buf, size_t len, int *w, int *h) {
    unsigned char *out = NULL;
    size_t n = 0;
    int status, pages = 0;
    const char *args[] = {"size", NULL};
    int rc = run_tool(args, buf, len, &out, &n, &status);
    if (rc == 0 && status == 0) {
        out = realloc(out, n + 1);
        out[n] = 0;
        rc = sscanf((char *)out, "%d %d %d", w, h, &pages) == 3 ? 0 : -1;
    } else {
        rc = -1;
    }
    free(out);
    return rc;
}

static bool thumbnailable(const char *t) {
    static const char *const types[] = {"image/jpeg", "image/jpg", "image/png", "image/gif",
                                        "image/webp", NULL};
    if (!t) return false;
    size_t n = strcspn(t, ";");
    for (const char *const *p = types; *p; p++)
        if (strlen(*p) == n && !strncasecmp(*p, t, n)) return true;
    return false;
}

static int query_int(hs_req *r, const char *name, int *out, hs_err *err) {
    const char *v = hs_req_query(r, name);
    if (!v) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing integer query parameter '%s'", name);
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n <= 0 || n > 100000)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Query parameter '%s' must be a positive "
                          "integer", name);
    *out = (int)n;
    return 0;
}

static int parse_req(hs_req *r, thumb_req *t, hs_err *err) {
    if (query_int(r, "width", &t->width, err) < 0 || query_int(r, "height", &t->height, err) < 0)
        return -1;
    const char *m = hs_req_query(r, "method");
    if (m && strcmp(m, "crop") && strcmp(m, "scale"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "method must be crop or scale");
    t->crop = m && !strcmp(m, "crop");
    const char *a = hs_req_query(r, "animated");
    if (a && strcmp(a, "true") && strcmp(a, "false"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "animated must be true or false");
    t->animated = a && !strcmp(a, "true");
    return 0;
}

/* Without dynamic_thumbnails, the configured size that serves the request:
 * the smallest at least as large as asked, preferring the same method, else
 * the largest there is (Synapse picks the same way). */
static bool pick_size(const cfg *cf, thumb_req *t) {
    const cfg_thumbnail_size *best = NULL;
    for (int pass = 0; pass < 2 && !best; pass++) {
        for (size_t i = 0; i < cf->n_thumbnail_sizes; i++) {
            const cfg_thumbnail_size *s = &cf->thumbnail_sizes[i];
            if (pass == 0 && s->crop != t->crop) continue;
            if (s->width < t->width || s->height < t->height) continue;
            if (!best || (long)s->width * s->height < (long)best->width * best->height) best = s;
        }
    }
    for (size_t i = 0; !best && i < cf->n_thumbnail_sizes; i++) {
        const cfg_thumbnail_size *s = &cf->thumbnail_sizes[i];
        if (s->crop != t->crop) continue;
        if (!best || (long)s->width * s->height > (long)best->width * best->height) best = s;
    }
    for (size_t i = 0; !best && i < cf->n_thumbnail_sizes; i++) best = &cf->thumbnail_sizes[i];
    if (!best) return false;
    t->width = best->width, t->height = best->height, t->crop = best->crop;
    return true;
}

/* A stored thumbnail: 1 with its address, key and type, 0 if none yet. */
static int cached(db_conn *c, const media_keys *k, const media_info *m, const thumb_req *t,
                  unsigned char *addr, unsigned char *key, char **type, long long *len,
                  hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT encode(t.address, 'hex'), encode(b.wrapped_key, 'hex'), t.content_type, t.length"
        " FROM media_thumbnails t JOIN media_blobs b ON b.address = t.address"
        " WHERE t.origin = $1 AND t.media_id = $2 AND t.width = $3 AND t.height = $4"
        " AND t.method = $5 AND t.animated = $6");
    char w[16], h[16];
    snprintf(w, sizeof w, "%d", t->width), snprintf(h, sizeof h, "%d", t->height);
    PGresult *res = db_run(c, &q, 6, (const char *[]){m->origin, m->media_id, w, h,
                                                      t->crop ? "crop" : "scale",
                                                      t->animated ? "t" : "f"}, err);
    if (!res) return -1;
    int rc = 0;
    unsigned char wrapped[MEDIA_WRAPPED_LEN];
    size_t n1 = 0, n2 = 0;
    if (PQntuples(res) == 1) {
        const char *a = PQgetvalue(res, 0, 0), *wk = PQgetvalue(res, 0, 1);
        if (sodium_hex2bin(addr, MEDIA_ADDR_LEN, a, strlen(a), NULL, &n1, NULL) != 0 ||
            sodium_hex2bin(wrapped, sizeof wrapped, wk, strlen(wk), NULL, &n2, NULL) != 0 ||
            media_unwrap_key(k, wrapped, n2, addr, n1, key) != 0)
            rc = hs_err_set(err, 500, "M_UNKNOWN", "cannot open a stored thumbnail");
        else {
            *type = strdup(PQgetvalue(res, 0, 2));
            *len = atoll(PQgetvalue(res, 0, 3));
            rc = 1;
        }
    }
    PQclear(res);
    return rc;
}

typedef struct made {
    void *buf;    /* malloc'd */
    size_t len;
    const char *type;
} made;

/* Decode and scale in the helper. 0, 1 when the original is already small
 * enough, -1 with err. */
static int render(const cfg *cf, const media_info *m, const unsigned char *src, thumb_req *t,
                  made *out, hs_err *err) {
    char w[16], h[16], px[24];
    snprintf(w, sizeof w, "%d", t->width);
    snprintf(h, sizeof h, "%d", t->height);
    snprintf(px, sizeof px, "%lld", (long long)cf->max_image_pixels);
    const char *args[] = {"render", w, h, t->crop ? "1" : "0", t->animated ? "1" : "0",
                          m->content_type ? m->content_type : "", px, NULL};
    unsigned char *res = NULL;
    size_t n = 0;
    int status;
    if (run_tool(args, src, (size_t)m->length, &res, &n, &status) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "thumbnailing is unavailable");
    unsigned char *nl = status == 0 ? memchr(res, '\n', n) : NULL;
    if (status == 1) return free(res), 1;
    if (status == 3 || (status == 0 && !nl)) {
        free(res);
        return status == 3 ? hs_err_set(err, 413, "M_TOO_LARGE", "Content is too large to thumbnail")
                           : hs_err_set(err, 500, "M_UNKNOWN", "the thumbnailer answered nonsense");
    }
    if (status != 0) {
        free(res);
        return hs_err_set(err, 400, "M_UNKNOWN", "Cannot generate thumbnails for the requested "
                          "content%s", status == 2 ? " (the image does not decode)" : "");
    }
    static const char *const types[] = {"image/webp", "image/png", "image/jpeg", NULL};
    out->type = NULL;
    for (const char *const *ty = types; *ty; ty++)
        if ((size_t)(nl - res) == strlen(*ty) && !memcmp(res, *ty, strlen(*ty))) out->type = *ty;
    if (!out->type) return free(res), hs_err_set(err, 500, "M_UNKNOWN", "unknown thumbnail type");
    out->len = n - (size_t)(nl + 1 - res);
    out->buf = malloc(out->len ? out->len : 1);
    memcpy(out->buf, nl + 1, out->len);
    free(res);
    return 0;
}

typedef struct thumb_store {
    hs_server *srv;
    const media_keys *k;
    media_writer *w;
    const media_info *m;
    const thumb_req *t;
    const char *type;
} thumb_store;

static int thumb_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt blob = DB_STMT(
        "INSERT INTO media_blobs (address, wrapped_key, length, created_ts)"
        " VALUES ($1::bytea, $2::bytea, $3, $4)"
        " ON CONFLICT (address) DO UPDATE SET length = media_blobs.length RETURNING xmax = 0");
    static db_stmt ins = DB_STMT(
        "INSERT INTO media_thumbnails (origin, media_id, width, height, method, animated,"
        " content_type, address, length) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bytea, $9)"
        " ON CONFLICT DO NOTHING");
    thumb_store *a = arg;
    unsigned char wrapped[MEDIA_WRAPPED_LEN];
    char addr[2 + 2 * MEDIA_ADDR_LEN + 1], wk[2 + 2 * MEDIA_WRAPPED_LEN + 1], len[24], now[24];
    char w[16], h[16];
    media_wrap_key(a->k, media_writer_key(a->w), media_writer_address(a->w), MEDIA_ADDR_LEN,
                   wrapped);
    addr[0] = wk[0] = '\\', addr[1] = wk[1] = 'x';
    sodium_bin2hex(addr + 2, sizeof addr - 2, media_writer_address(a->w), MEDIA_ADDR_LEN);
    sodium_bin2hex(wk + 2, sizeof wk - 2, wrapped, sizeof wrapped);
    snprintf(len, sizeof len, "%lld", media_writer_length(a->w));
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    snprintf(w, sizeof w, "%d", a->t->width), snprintf(h, sizeof h, "%d", a->t->height);
    PGresult *res = db_run(c, &blob, 4, (const char *[]){addr, wk, len, now}, err);
    if (!res) return -1;
    bool inserted = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (inserted && media_writer_install(a->w, a->srv->cfg->media_store_path, err) < 0) return -1;
    const char *p[] = {a->m->origin, a->m->media_id, w, h, a->t->crop ? "crop" : "scale",
                       a->t->animated ? "t" : "f", a->type, addr, len};
    return db_exec(c, &ins, 9, p, err) < 0 ? -1 : 0;
}

/* Keep the new thumbnail, encrypted; a failure here only costs a redo later. */
static void keep(hs_server *srv, const media_keys *k, const media_info *m, const thumb_req *t,
                 const made *th) {
    hs_err err = {0};
    media_writer *w = media_writer_new(srv->cfg->media_store_path, k, &err);
    if (w && media_writer_write(w, th->buf, th->len, &err) == 0 &&
        media_writer_finish(w, &err) == 0) {
        thumb_store a = {srv, k, w, m, t, th->type};
        db_txn(srv->db, thumb_txn, &a, &err);
    }
    if (err.status) hs_warn("media: cannot keep a thumbnail: %s", err.msg);
    media_writer_free(w);
}

static const char *thumb_disposition(const char *type) {
    return !strcmp(type, "image/png")    ? "inline; filename=thumbnail.png"
           : !strcmp(type, "image/webp") ? "inline; filename=thumbnail.webp"
                                         : "inline; filename=thumbnail.jpg";
}

static int respond_buffer(hs_req *r, made *th, bool multipart) {
    const char *disp = thumb_disposition(th->type);
    struct MHD_Response *resp;
    if (multipart) {
        char *prefix, *suffix, *outer, *all;
        media_multipart_frame(th->type, disp, &prefix, &suffix, &outer);
        size_t pl = strlen(prefix), sl = strlen(suffix);
        all = malloc(pl + th->len + sl);
        memcpy(all, prefix, pl), memcpy(all + pl, th->buf, th->len);
        memcpy(all + pl + th->len, suffix, sl);
        resp = MHD_create_response_from_buffer(pl + th->len + sl, all, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", outer);
        free(prefix), free(suffix), free(outer);
    } else {
        resp = MHD_create_response_from_buffer(th->len, th->buf, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type", th->type);
        MHD_add_response_header(resp, "Content-Disposition", disp);
    }
    media_safe_headers(resp);
    r->custom = resp;
    return 200;
}

static int make_thumbnail(hs_req *r, const media_keys *k, const media_info *m, thumb_req *t,
                          bool multipart, hs_err *err) {
    const cfg *cf = r->srv->cfg;
    if (m->length > MAX_THUMB_SOURCE)
        return hs_err_set(err, 413, "M_TOO_LARGE", "Content is too large to thumbnail");
    unsigned char *src = media_blob_slurp(cf->media_store_path, m->address, m->key,
                                          (size_t)m->length, err);
    if (!src) return -1;
    made th = {0};
    int rc = render(cf, m, src, t, &th, err);
    sodium_memzero(src, (size_t)m->length);
    free(src);
    if (rc == 1) { /* the original is the thumbnail */
        char *disp = media_disposition(true, NULL);
        rc = media_respond_file(r, m->address, m->key, m->length, m->content_type, disp,
                                multipart, false, err);
        free(disp);
        return rc;
    }
    if (rc < 0) return -1;
    keep(r->srv, k, m, t, &th);
    rc = respond_buffer(r, &th, multipart);
    free(th.buf);
    return rc;
}

static int thumbnail(hs_req *r, enum media_via via, const char *server, const char *id,
                     hs_err *err) {
    thumb_req t;
    if (parse_req(r, &t, err) < 0) return -1;
    const media_keys *k = media_keys_get(r->srv, err);
    if (!k) return -1;
    media_info m;
    int rc = media_find_for_request(r, k, via, server, id, &m, err);
    if (rc <= 0) return rc < 0 ? -1 : HS_SUSPENDED;
    const cfg *cf = r->srv->cfg;
    if (!thumbnailable(m.content_type)) {
        media_info_clear(&m);
        return hs_err_set(err, 400, "M_UNKNOWN", "Cannot generate thumbnails for the requested "
                          "content");
    }
    if (cf->dynamic_thumbnails) {
        if (t.width > MAX_DYNAMIC_SIDE) t.width = MAX_DYNAMIC_SIDE;
        if (t.height > MAX_DYNAMIC_SIDE) t.height = MAX_DYNAMIC_SIDE;
    } else if (!pick_size(cf, &t)) {
        media_info_clear(&m);
        return hs_err_set(err, 400, "M_UNKNOWN", "No thumbnail sizes are configured");
    }
    unsigned char addr[MEDIA_ADDR_LEN], key[MEDIA_KEY_LEN];
    char *type = NULL;
    long long len = 0;
    db_conn *c = db_acquire(r->srv->db, err);
    rc = c ? cached(c, k, &m, &t, addr, key, &type, &len, err) : -1;
    db_release(r->srv->db, c);
    if (rc == 1) {
        rc = media_respond_file(r, addr, key, len, type, thumb_disposition(type),
                                via == MEDIA_VIA_FEDERATION, false, err);
    } else if (rc == 0) {
        rc = make_thumbnail(r, k, &m, &t, via == MEDIA_VIA_FEDERATION, err);
    }
    free(type);
    sodium_memzero(key, sizeof key);
    media_info_clear(&m);
    return rc;
}

int media_thumbnail(hs_req *r, json_t **out, hs_err *err) {
    (void)out;
    return thumbnail(r, MEDIA_VIA_CLIENT, r->params[0], r->params[1], err);
}

int media_thumbnail_legacy(hs_req *r, json_t **out, hs_err *err) {
    (void)out;
    const char *remote = hs_req_query(r, "allow_remote");
    if (remote && !strcmp(remote, "false") && !media_is_local(r->srv, r->params[0]))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Not found");
    return thumbnail(r, MEDIA_VIA_LEGACY, r->params[0], r->params[1], err);
}

int media_fed_thumbnail(hs_req *r, json_t **out, hs_err *err) {
    (void)out;
    return thumbnail(r, MEDIA_VIA_FEDERATION, r->srv->cfg->server_name, r->params[0], err);
}
