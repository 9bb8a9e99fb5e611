/* retention.c — deleting media: by mxc URI, by age (media_retention and
 * `pvyhs media delete|purge-remote --before`), quarantine, and removing
 * stored files no row uses any more.
 *
 * A file is removed inside the transaction that removes its last reference,
 * while that transaction holds the blob's row lock (the lock an upload of the
 * same content takes too): it is renamed aside first and unlinked only after
 * COMMIT, or renamed back on ROLLBACK, so no upload ever loses its file. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/log.h"
#include "media_internal.h"

#define RETENTION_EVERY_MS (3600LL * 1000)
#define BATCH 1000 /* media removed per statement by age */

static void gc_push(media_gc *gc, char *path) {
    if (gc->n == gc->cap) {
        gc->cap = gc->cap ? gc->cap * 2 : 16;
        gc->paths = realloc(gc->paths, gc->cap * sizeof *gc->paths);
    }
    gc->paths[gc->n++] = path;
}

/* Drop the blob at hex (\x…) if nothing refers to it; its file goes aside. */
static int gc_one(db_conn *c, const cfg *cf, const char *hex, media_gc *gc, hs_err *err) {
    static db_stmt del = DB_STMT(
        "DELETE FROM media_blobs b WHERE b.address = $1::bytea"
        " AND NOT EXISTS (SELECT 1 FROM media WHERE address = $1::bytea)"
        " AND NOT EXISTS (SELECT 1 FROM media_thumbnails WHERE address = $1::bytea)");
    static db_stmt lock = DB_STMT("SELECT 1 FROM media_blobs WHERE address = $1::bytea FOR UPDATE");
    PGresult *res = db_run(c, &lock, 1, (const char *[]){hex}, err);
    if (!res) return -1;
    bool exists = PQntuples(res) > 0;
    PQclear(res);
    if (!exists) return 0;
    long n = db_exec(c, &del, 1, (const char *[]){hex}, err);
    if (n <= 0) return n < 0 ? -1 : 0;
    unsigned char addr[MEDIA_ADDR_LEN];
    size_t len = 0;
    if (sodium_hex2bin(addr, sizeof addr, hex + 2, strlen(hex + 2), NULL, &len, NULL) != 0)
        return 0;
    char *path = media_blob_path(cf->media_store_path, addr), *aside;
    if (asprintf(&aside, "%s.del", path) >= 0) {
        if (rename(path, aside) == 0) gc_push(gc, aside);
        else free(aside);
    }
    free(path);
    return 0;
}

void media_gc_finish(media_gc *gc, bool committed) {
    for (size_t i = 0; i < gc->n; i++) {
        if (committed) {
            unlink(gc->paths[i]);
        } else {
            char *orig = strndup(gc->paths[i], strlen(gc->paths[i]) - 4); /* less ".del" */
            rename(gc->paths[i], orig);
            free(orig);
        }
        free(gc->paths[i]);
    }
    free(gc->paths);
    memset(gc, 0, sizeof *gc);
}

/* Garbage-collect the addresses in column 0 of res. */
static int gc_result(db_conn *c, const cfg *cf, PGresult *res, media_gc *gc, hs_err *err) {
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, 0)) continue;
        char hex[2 + 2 * MEDIA_ADDR_LEN + 1];
        snprintf(hex, sizeof hex, "\\x%s", PQgetvalue(res, i, 0));
        if (gc_one(c, cf, hex, gc, err) < 0) return -1;
    }
    return 0;
}

/* Run one statement that deletes media rows and yields the addresses they
 * used, then collect those addresses, all in one transaction on c. */
static long delete_with(db_conn *c, const cfg *cf, db_stmt *st, int n, const char *const *p,
                        hs_err *err) {
    media_gc gc = {0};
    if (db_script(c, "BEGIN", err) < 0) return -1;
    PGresult *res = db_run(c, st, n, p, err);
    long rows = -1;
    if (res) {
        rows = PQntuples(res) ? atol(PQgetvalue(res, 0, 1)) : 0;
        if (gc_result(c, cf, res, &gc, err) < 0) rows = -1;
        PQclear(res);
    }
    bool ok = rows >= 0 && db_script(c, "COMMIT", err) == 0;
    if (!ok) db_script(c, "ROLLBACK", NULL);
    media_gc_finish(&gc, ok);
    return ok ? rows : -1;
}

/* The shape both deletions share: `gone` deletes media rows; the result is
 * every address they and their thumbnails used, with the count of media. */
#define ADDRESSES_OF_GONE                                                              \
    " , addrs AS (SELECT address FROM gone WHERE address IS NOT NULL"                  \
    "   UNION SELECT t.address FROM media_thumbnails t JOIN gone g"                    \
    "   ON t.origin = g.origin AND t.media_id = g.media_id)"                           \
    " SELECT encode(a.address, 'hex'), (SELECT count(*) FROM gone) FROM addrs a"       \
    " UNION ALL SELECT NULL, (SELECT count(*) FROM gone)"                              \
    " WHERE NOT EXISTS (SELECT 1 FROM addrs) ORDER BY 1 NULLS LAST"

long media_delete(db_conn *c, const cfg *cf, const char *media, hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH gone AS (DELETE FROM media WHERE origin = $1 AND media_id = $2"
        " RETURNING origin, media_id, address)" ADDRESSES_OF_GONE);
    char *origin, *id;
    if (media_parse_mxc(media, &origin, &id, err) < 0) return -1;
    long n = delete_with(c, cf, &q, 2, (const char *[]){origin, id}, err);
    free(origin), free(id);
    return n;
}

long media_delete_before(db_conn *c, const cfg *cf, bool remote, long long before_ms,
                         hs_err *err) {
    /* Quarantined media is kept (it may be evidence): delete it by its URI. */
    static db_stmt q = DB_STMT(
        "WITH gone AS (DELETE FROM media WHERE (origin, media_id) IN ("
        "  SELECT origin, media_id FROM media WHERE remote = $1 AND last_access_ts < $2"
        "  AND address IS NOT NULL AND quarantined_by IS NULL LIMIT $3)"
        " RETURNING origin, media_id, address)" ADDRESSES_OF_GONE);
    char before[24], batch[16];
    snprintf(before, sizeof before, "%lld", before_ms);
    snprintf(batch, sizeof batch, "%d", BATCH);
    long total = 0, n;
    do {
        n = delete_with(c, cf, &q, 3, (const char *[]){remote ? "t" : "f", before, batch}, err);
        if (n < 0) return -1;
        total += n;
    } while (n == BATCH);
    return total;
}

long media_quarantine(db_conn *c, const char *media, const char *by, bool undo, hs_err *err) {
    /* Every copy of the same content goes with it, as Synapse quarantines by
     * hash: re-uploading quarantined content quarantines the upload too. */
    static db_stmt q = DB_STMT(
        "UPDATE media SET quarantined_by = $3 WHERE (origin = $1 AND media_id = $2)"
        " OR address IN (SELECT address FROM media WHERE origin = $1 AND media_id = $2"
        " AND address IS NOT NULL)");
    char *origin, *id;
    if (media_parse_mxc(media, &origin, &id, err) < 0) return -1;
    long n = db_exec(c, &q, 3, (const char *[]){origin, id, undo ? NULL : by}, err);
    free(origin), free(id);
    return n;
}

long media_quarantine_user(db_conn *c, const char *user_id, const char *by, bool undo,
                           hs_err *err) {
    static db_stmt q = DB_STMT(
        "UPDATE media SET quarantined_by = $2 WHERE user_id = $1"
        " OR address IN (SELECT address FROM media WHERE user_id = $1 AND address IS NOT NULL)");
    return db_exec(c, &q, 2, (const char *[]){user_id, undo ? NULL : by}, err);
}

/* Created mxc URIs whose upload never came. */
static void expire_unused(db_conn *c, const cfg *cf) {
    static db_stmt q = DB_STMT(
        "DELETE FROM media WHERE NOT remote AND address IS NULL AND created_ts < $1");
    char before[24];
    hs_err err = {0};
    snprintf(before, sizeof before, "%lld", hs_now_ms() - cf->unused_expiration_time);
    db_exec(c, &q, 1, (const char *[]){before}, &err);
}

/* At most once an hour, in whichever media request comes first: no thread of
 * its own to outlive the database pool at shutdown. */
void media_retention_tick(hs_server *srv) {
    static atomic_llong last;
    long long now = hs_now_ms(), prev = atomic_load(&last);
    if (now - prev < RETENTION_EVERY_MS || !atomic_compare_exchange_strong(&last, &prev, now))
        return;
    const cfg *cf = srv->cfg;
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c) return;
    expire_unused(c, cf);
    long local = 0, remote = 0;
    if (cf->media_local_lifetime > 0)
        local = media_delete_before(c, cf, false, now - cf->media_local_lifetime, &err);
    if (cf->media_remote_lifetime > 0)
        remote = media_delete_before(c, cf, true, now - cf->media_remote_lifetime, &err);
    db_release(srv->db, c);
    if (local || remote)
        hs_info("media retention: deleted %ld local and %ld remote media", local, remote);
    if (err.status) hs_warn("media retention: %s", err.msg);
}
