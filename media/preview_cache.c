/* preview_cache.c — link previews kept in PostgreSQL for an hour, as Synapse
 * does, so the same URL asked for by many readers of a room is fetched once
 * an hour. The row holds the URL only as a keyed hash and the preview sealed
 * under the master key (bound to that hash), so the database alone says
 * neither which links were previewed nor what they showed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/log.h"
#include "media_internal.h"

#define PREVIEW_TTL_MS 3600000LL /* Synapse's: don't spider a URL more than once an hour */

/* "\x<hex>" of the URL's keyed hash, and the AD its preview is sealed to. */
static void url_key(const media_keys *k, const char *url, char hash[2 + 64 + 1], char ad[80]) {
    unsigned char h[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    static const char domain[] = "pvyhs url preview\n"; /* never a file's address */
    crypto_auth_hmacsha256_init(&st, k->addr, sizeof k->addr);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain, sizeof domain - 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)url, strlen(url));
    crypto_auth_hmacsha256_final(&st, h);
    hash[0] = '\\', hash[1] = 'x';
    sodium_bin2hex(hash + 2, 65, h, sizeof h);
    snprintf(ad, 80, "preview:%s", hash + 2);
}

json_t *media_preview_cached(hs_server *srv, const media_keys *k, const char *url, long long now) {
    static db_stmt q = DB_STMT(
        "SELECT encode(og, 'hex') FROM media_url_cache WHERE url_hash = $1 AND expires_ts > $2"
        " ORDER BY download_ts DESC LIMIT 1");
    char hash[67], ad[80], ts[24];
    url_key(k, url, hash, ad);
    snprintf(ts, sizeof ts, "%lld", now);
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c) return NULL;
    PGresult *res = db_run(c, &q, 2, (const char *[]){hash, ts}, &err);
    db_release(srv->db, c);
    json_t *og = NULL;
    if (res && PQntuples(res) == 1) {
        const char *hex = PQgetvalue(res, 0, 0);
        size_t n = strlen(hex) / 2, len = 0;
        unsigned char *sealed = malloc(n + 1);
        char *text = sodium_hex2bin(sealed, n + 1, hex, strlen(hex), NULL, &len, NULL) == 0
                         ? media_open_str(k, sealed, len, ad) : NULL;
        og = text ? json_loads(text, 0, NULL) : NULL;
        if (!json_is_object(og)) {
            json_decref(og), og = NULL;
            hs_warn("media: a cached link preview does not open; fetching the page again");
        }
        free(sealed), free(text);
    }
    PQclear(res);
    return og;
}

void media_preview_remember(hs_server *srv, const media_keys *k, const char *url, const json_t *og,
                            long long now) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO media_url_cache (url_hash, og, download_ts, expires_ts)"
        " VALUES ($1, decode($2, 'hex'), $3, $4)");
    static db_stmt expire = DB_STMT("DELETE FROM media_url_cache WHERE expires_ts <= $1");
    char hash[67], ad[80], ts[24], exp[24];
    url_key(k, url, hash, ad);
    snprintf(ts, sizeof ts, "%lld", now);
    snprintf(exp, sizeof exp, "%lld", now + PREVIEW_TTL_MS);
    char *text = json_dumps(og, JSON_COMPACT);
    size_t n = 0;
    unsigned char *sealed = text ? media_seal_str(k, text, ad, &n) : NULL;
    char *hex = sealed ? malloc(2 * n + 1) : NULL;
    hs_err err = {0};
    db_conn *c = hex ? db_acquire(srv->db, &err) : NULL;
    if (c) {
        sodium_bin2hex(hex, 2 * n + 1, sealed, n);
        /* Expired previews go as new ones come, so the table stays about an
         * hour's worth of links. */
        db_exec(c, &expire, 1, (const char *[]){ts}, &err);
        db_exec(c, &ins, 4, (const char *[]){hash, hex, ts, exp}, &err);
        db_release(srv->db, c);
    }
    if (err.status) hs_warn("media: cannot keep a link preview: %s", err.msg);
    free(text), free(sealed), free(hex);
}
