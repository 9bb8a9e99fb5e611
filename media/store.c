/* store.c — the media rows: looking media up, recording a finished upload
 * (deduplicated by content address), quotas.
 *
 * A blob row holds a stored file's sealed key; media rows (one per mxc URI)
 * point at blobs, so the same content uploaded twice is stored once. The row
 * lock on the blob orders uploads and deletions of the same content: whoever
 * holds it may create or remove the file at that address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "media_internal.h"

/* \x… for a bytea parameter. */
static void to_bytea(char *out, const unsigned char *b, size_t n) {
    out[0] = '\\', out[1] = 'x';
    sodium_bin2hex(out + 2, n * 2 + 1, b, n);
}

static int from_hex(unsigned char *out, size_t n, const char *hex) {
    size_t len = 0;
    return sodium_hex2bin(out, n, hex, strlen(hex), NULL, &len, NULL) == 0 && len == n ? 0 : -1;
}

static char *name_ad(const char *origin, const char *media_id) {
    char *ad;
    return asprintf(&ad, "name:%s/%s", origin, media_id) < 0 ? NULL : ad;
}

void media_info_clear(media_info *m) {
    free(m->origin), free(m->media_id), free(m->user_id), free(m->content_type);
    free(m->upload_name);
    sodium_memzero(m->key, sizeof m->key);
    memset(m, 0, sizeof *m);
}

static char *opt_str(PGresult *res, int col) {
    return PQgetisnull(res, 0, col) ? NULL : strdup(PQgetvalue(res, 0, col));
}

/* Opens the file key (bound to its address) and the sealed upload name. */
static int open_secrets(const media_keys *k, PGresult *res, media_info *m, hs_err *err) {
    if (m->uploaded) {
        unsigned char wrapped[MEDIA_WRAPPED_LEN];
        if (from_hex(wrapped, sizeof wrapped, PQgetvalue(res, 0, 10)) < 0 ||
            media_unwrap_key(k, wrapped, sizeof wrapped, m->address, MEDIA_ADDR_LEN, m->key) < 0)
            return hs_err_set(err, 500, "M_UNKNOWN", "cannot open the key of a stored file");
    }
    if (!PQgetisnull(res, 0, 6)) {
        const char *hex = PQgetvalue(res, 0, 6);
        size_t n = strlen(hex) / 2, len = 0;
        unsigned char *sealed = malloc(n + 1);
        char *ad = name_ad(m->origin, m->media_id);
        if (sodium_hex2bin(sealed, n, hex, strlen(hex), NULL, &len, NULL) == 0)
            m->upload_name = media_open_str(k, sealed, len, ad);
        free(sealed), free(ad);
    }
    return 0;
}

int media_lookup(db_conn *c, const media_keys *keys, const char *origin, const char *media_id,
                 media_info *m, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT m.remote, m.authenticated, m.quarantined_by IS NOT NULL, m.address IS NOT NULL,"
        " m.user_id, m.content_type, encode(m.upload_name, 'hex'), coalesce(m.length, 0),"
        " m.created_ts, encode(m.address, 'hex'), encode(b.wrapped_key, 'hex')"
        " FROM media m LEFT JOIN media_blobs b ON b.address = m.address"
        " WHERE m.origin = $1 AND m.media_id = $2");
    memset(m, 0, sizeof *m);
    PGresult *res = db_run(c, &q, 2, (const char *[]){origin, media_id}, err);
    if (!res) return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    m->origin = strdup(origin);
    m->media_id = strdup(media_id);
    m->remote = PQgetvalue(res, 0, 0)[0] == 't';
    m->authenticated = PQgetvalue(res, 0, 1)[0] == 't';
    m->quarantined = PQgetvalue(res, 0, 2)[0] == 't';
    m->uploaded = PQgetvalue(res, 0, 3)[0] == 't';
    m->user_id = opt_str(res, 4);
    m->content_type = opt_str(res, 5);
    m->length = atoll(PQgetvalue(res, 0, 7));
    m->created_ts = atoll(PQgetvalue(res, 0, 8));
    int rc = 1;
    if (m->uploaded && from_hex(m->address, MEDIA_ADDR_LEN, PQgetvalue(res, 0, 9)) < 0)
        rc = hs_err_set(err, 500, "M_UNKNOWN", "bad content address in the database");
    if (rc > 0 && keys && open_secrets(keys, res, m, err) < 0) rc = -1;
    PQclear(res);
    if (rc < 0) media_info_clear(m);
    return rc;
}

void media_touch(db_conn *c, const char *origin, const char *media_id) {
    /* Retention needs "last used" to the hour, not to the request: writing at
     * most every ten minutes keeps downloads from turning into writes. */
    static db_stmt q = DB_STMT(
        "UPDATE media SET last_access_ts = $3"
        " WHERE origin = $1 AND media_id = $2 AND last_access_ts < $3::bigint - 600000");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    hs_err err = {0};
    db_exec(c, &q, 3, (const char *[]){origin, media_id, now}, &err);
}

typedef struct store_arg {
    hs_server *srv;
    const media_keys *k;
    media_writer *w;
    const media_new *n;
} store_arg;

/* The blob row, created or locked; installs the file when it is new. */
static int upsert_blob(db_conn *c, store_arg *a, const char *addr, hs_err *err) {
    static db_stmt q = DB_STMT(
        "INSERT INTO media_blobs (address, wrapped_key, length, created_ts)"
        " VALUES ($1::bytea, $2::bytea, $3, $4)"
        " ON CONFLICT (address) DO UPDATE SET length = media_blobs.length"
        " RETURNING xmax = 0");
    unsigned char wrapped[MEDIA_WRAPPED_LEN];
    char wrapped_hex[2 + 2 * MEDIA_WRAPPED_LEN + 1], len[24], now[24];
    media_wrap_key(a->k, media_writer_key(a->w), media_writer_address(a->w), MEDIA_ADDR_LEN,
                   wrapped);
    to_bytea(wrapped_hex, wrapped, sizeof wrapped);
    snprintf(len, sizeof len, "%lld", media_writer_length(a->w));
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    PGresult *res = db_run(c, &q, 4, (const char *[]){addr, wrapped_hex, len, now}, err);
    if (!res) return -1;
    bool inserted = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    /* New content: the file goes to its address now, while we hold the row. */
    return inserted ? media_writer_install(a->w, a->srv->cfg->media_store_path, err) : 0;
}

static int store_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO media (origin, media_id, remote, user_id, content_type, upload_name,"
        " address, length, created_ts, last_access_ts, authenticated, quarantined_by)"
        " VALUES ($1, $2, $3, $4, $5, $6::bytea, $7::bytea, $8, $9, $9, $10,"
        "  (SELECT 'system' FROM media WHERE address = $7::bytea AND quarantined_by IS NOT NULL"
        "   LIMIT 1))");
    static db_stmt upd = DB_STMT(
        "UPDATE media SET content_type = $5, upload_name = $6::bytea, address = $7::bytea,"
        " length = $8, last_access_ts = $9,"
        " quarantined_by = (SELECT 'system' FROM media WHERE address = $7::bytea"
        "  AND quarantined_by IS NOT NULL LIMIT 1)"
        " WHERE origin = $1 AND media_id = $2 AND remote = $3::boolean AND user_id = $4"
        " AND address IS NULL");
    store_arg *a = arg;
    const media_new *n = a->n;
    char addr[2 + 2 * MEDIA_ADDR_LEN + 1], len[24], now[24];
    to_bytea(addr, media_writer_address(a->w), MEDIA_ADDR_LEN);
    if (upsert_blob(c, a, addr, err) < 0) return -1;
    char *name = NULL;
    if (n->upload_name) {
        size_t sl;
        char *ad = name_ad(n->origin, n->media_id);
        unsigned char *sealed = media_seal_str(a->k, n->upload_name, ad, &sl);
        name = malloc(2 + 2 * sl + 1);
        to_bytea(name, sealed, sl);
        free(sealed), free(ad);
    }
    snprintf(len, sizeof len, "%lld", media_writer_length(a->w));
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *p[] = {n->origin, n->media_id, n->remote ? "t" : "f", n->user_id,
                       n->content_type, name, addr, len, now, n->authenticated ? "t" : "f"};
    long rows = db_exec(c, n->update ? &upd : &ins, n->update ? 9 : 10, p, err);
    free(name);
    if (rows < 0) return -1;
    if (rows == 0)
        return hs_err_set(err, 409, "M_CANNOT_OVERWRITE_MEDIA", "Media ID already has content");
    return 0;
}

int media_store_file(hs_server *srv, const media_keys *k, media_writer *w, const media_new *n,
                     hs_err *err) {
    store_arg a = {srv, k, w, n};
    return db_txn(srv->db, store_txn, &a, err);
}

long long media_user_uploaded(db_conn *c, const char *user_id, long long since_ms, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT coalesce(sum(length), 0) FROM media"
        " WHERE user_id = $1 AND NOT remote AND address IS NOT NULL AND created_ts >= $2");
    char since[24];
    snprintf(since, sizeof since, "%lld", since_ms);
    PGresult *res = db_run(c, &q, 2, (const char *[]){user_id, since}, err);
    if (!res) return -1;
    long long n = atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

int media_check_quota(hs_server *srv, const char *user_id, long long more, hs_err *err) {
    const cfg *cf = srv->cfg;
    if (!cf->n_media_upload_limits) return 0;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    int rc = 0;
    long long now = hs_now_ms();
    for (size_t i = 0; i < cf->n_media_upload_limits && rc == 0; i++) {
        const cfg_upload_limit *l = &cf->media_upload_limits[i];
        long long used = media_user_uploaded(c, user_id, now - l->time_period, err);
        if (used < 0) rc = -1;
        else if (used + more > l->max_size)
            /* The spec's error for a quota (Synapse answers 400
             * M_RESOURCE_LIMIT_EXCEEDED here). */
            rc = hs_err_set(err, 403, "M_FORBIDDEN",
                            "Media upload limit exceeded: %lld of %lld bytes used", used,
                            l->max_size);
    }
    db_release(srv->db, c);
    return rc;
}
