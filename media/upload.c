/* upload.c — POST /_matrix/media/v3/upload, the asynchronous pair POST
 * /_matrix/media/v1/create + PUT /_matrix/media/v3/upload/{serverName}/{mediaId}.
 *
 * Bodies stream (HS_STREAM_BODY): each piece is encrypted and written as it
 * arrives, so memory stays constant whatever the size, and max_upload_size is
 * enforced from Content-Length before anything is read, or while counting
 * for a chunked body. The file is recorded only once it is complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "media_internal.h"

typedef struct upload_ctx {
    media_writer *w;
    const media_keys *k;
    long long max, got;
    char *content_type, *filename;
} upload_ctx;

static void upload_ctx_free(void *p) {
    upload_ctx *u = p;
    media_writer_free(u->w); /* an unfinished upload leaves nothing behind */
    free(u->content_type), free(u->filename);
    free(u);
}

static int too_large(long long max, hs_err *err) {
    return hs_err_set(err, 413, "M_TOO_LARGE", "Upload request body is too large (the limit is "
                      "%lld bytes)", max);
}

static int on_chunk(hs_req *r, const char *data, size_t n, hs_err *err) {
    upload_ctx *u = r->ctx;
    u->got += (long long)n;
    int rc = u->got > u->max ? too_large(u->max, err) : media_writer_write(u->w, data, n, err);
    if (rc < 0) { /* refused: the rest is dropped, and so is what we have */
        media_writer_free(u->w);
        u->w = NULL;
    }
    return rc;
}

static bool utf8_valid(const unsigned char *s) {
    while (*s) {
        int n = *s < 0x80 ? 0 : (*s >> 5) == 6 ? 1 : (*s >> 4) == 14 ? 2 : (*s >> 3) == 30 ? 3 : -1;
        if (n < 0) return false;
        s++;
        for (int i = 0; i < n; i++, s++)
            if ((*s & 0xc0) != 0x80) return false;
    }
    return true;
}

/* Content-Type as given (default application/octet-stream), kept only if it
 * is printable ASCII of a sane length. */
static char *upload_type(hs_req *r) {
    const char *t = hs_req_header(r, "Content-Type");
    if (!t || !*t || strlen(t) > 255) return strdup("application/octet-stream");
    for (const char *p = t; *p; p++)
        if (*p < 0x20 || *p > 0x7e) return strdup("application/octet-stream");
    return strdup(t);
}

/* What both uploads check before the body: size, quota, name; then the
 * encrypted file starts. */
static int upload_begin(hs_req *r, hs_err *err) {
    hs_server *srv = r->srv;
    long long max = srv->cfg->max_upload_size;
    const char *cl = hs_req_header(r, "Content-Length");
    long long declared = cl ? atoll(cl) : 0;
    if (declared > max) return too_large(max, err);
    const char *filename = hs_req_query(r, "filename");
    if (filename && (strlen(filename) > 1024 || !utf8_valid((const unsigned char *)filename)))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "filename must be UTF-8, at most 1024 bytes");
    if (media_check_quota(srv, r->user_id, declared, err) < 0) return -1;
    const media_keys *k = media_keys_get(srv, err);
    if (!k) return -1;
    media_writer *w = media_writer_new(srv->cfg->media_store_path, k, err);
    if (!w) return -1;
    upload_ctx *u = calloc(1, sizeof *u);
    u->w = w, u->k = k, u->max = max;
    u->content_type = upload_type(r);
    u->filename = filename && *filename ? strdup(filename) : NULL;
    r->ctx = u;
    r->ctx_free = upload_ctx_free;
    r->on_chunk = on_chunk;
    return HS_STREAM_ACCEPT;
}

/* The body is complete: seal it, check the quota with the real size, record. */
static int upload_finish(hs_req *r, const char *media_id, bool update, hs_err *err) {
    upload_ctx *u = r->ctx;
    if (media_writer_finish(u->w, err) < 0) return -1;
    if (media_check_quota(r->srv, r->user_id, media_writer_length(u->w), err) < 0) return -1;
    media_new n = {.origin = r->srv->cfg->server_name, .media_id = media_id,
                   .user_id = r->user_id, .content_type = u->content_type,
                   .upload_name = u->filename, .remote = false,
                   .authenticated = r->srv->cfg->enable_authenticated_media, .update = update};
    return media_store_file(r->srv, u->k, u->w, &n, err);
}

int media_upload(hs_req *r, json_t **out, hs_err *err) {
    if (r->stream_begin) return upload_begin(r, err);
    char id[MEDIA_ID_LEN + 1];
    media_random_id(id);
    if (upload_finish(r, id, false, err) < 0) return -1;
    char *uri;
    if (asprintf(&uri, "mxc://%s/%s", r->srv->cfg->server_name, id) < 0) return -1;
    *out = json_pack("{s:s}", "content_uri", uri);
    free(uri);
    return 200;
}

/* Synapse's checks for PUT to a created URI, in its order. */
static int may_upload_to(hs_req *r, hs_err *err) {
    hs_server *srv = r->srv;
    const char *server = r->params[0], *id = r->params[1];
    if (!media_is_local(srv, server))
        return hs_err_set(err, 404, "M_NOT_FOUND", "Non-local server name specified");
    if (!media_id_valid(id)) return hs_err_set(err, 404, "M_NOT_FOUND", "Unknown media ID");
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    media_info m;
    int found = media_lookup(c, NULL, server, id, &m, err);
    db_release(srv->db, c);
    if (found < 0) return -1;
    int rc = 0;
    if (!found || m.remote) rc = hs_err_set(err, 404, "M_NOT_FOUND", "Unknown media ID");
    else if (!m.user_id || strcmp(m.user_id, r->user_id))
        rc = hs_err_set(err, 403, "M_FORBIDDEN", "Only the creator of the media ID can upload to it");
    else if (m.uploaded)
        rc = hs_err_set(err, 409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content");
    else if (m.created_ts < hs_now_ms() - srv->cfg->unused_expiration_time)
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "Media ID has expired");
    media_info_clear(&m);
    return rc;
}

int media_upload_to(hs_req *r, json_t **out, hs_err *err) {
    if (r->stream_begin) {
        if (may_upload_to(r, err) < 0) return -1;
        return upload_begin(r, err);
    }
    if (upload_finish(r, r->params[1], true, err) < 0) return -1;
    *out = json_object();
    return 200;
}

/* Pending: created, not uploaded, not expired. */
static int pending(db_conn *c, const char *user_id, long long since, long long *n,
                   long long *oldest, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT count(*), coalesce(min(created_ts), 0) FROM media"
        " WHERE user_id = $1 AND NOT remote AND address IS NULL AND created_ts >= $2");
    char s[24];
    snprintf(s, sizeof s, "%lld", since);
    PGresult *res = db_run(c, &q, 2, (const char *[]){user_id, s}, err);
    if (!res) return -1;
    *n = atoll(PQgetvalue(res, 0, 0));
    *oldest = atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

int media_create(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO media (origin, media_id, remote, user_id, created_ts, last_access_ts,"
        " authenticated) VALUES ($1, $2, false, $3, $4, $4, $5)");
    const cfg *cf = r->srv->cfg;
    long long now = hs_now_ms(), n, oldest;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = pending(c, r->user_id, now - cf->unused_expiration_time, &n, &oldest, err);
    if (rc == 0 && n >= cf->max_pending_media_uploads) {
        db_release(r->srv->db, c);
        long long wait = oldest + cf->unused_expiration_time - now;
        *out = json_pack("{s:s, s:s, s:I}", "errcode", "M_LIMIT_EXCEEDED", "error",
                         "Too many pending media uploads", "retry_after_ms",
                         (json_int_t)(wait > 0 ? wait : 0));
        return 429;
    }
    char id[MEDIA_ID_LEN + 1], ts[24];
    media_random_id(id);
    snprintf(ts, sizeof ts, "%lld", now);
    if (rc == 0)
        rc = db_exec(c, &ins, 5, (const char *[]){cf->server_name, id, r->user_id, ts,
                                                  cf->enable_authenticated_media ? "t" : "f"},
                     err) < 0 ? -1 : 0;
    db_release(r->srv->db, c);
    if (rc < 0) return -1;
    char *uri;
    if (asprintf(&uri, "mxc://%s/%s", cf->server_name, id) < 0) return -1;
    *out = json_pack("{s:s, s:I}", "content_uri", uri, "unused_expires_at",
                     (json_int_t)(now + cf->unused_expiration_time));
    free(uri);
    return 200;
}
