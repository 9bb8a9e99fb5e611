/* keys.c — the media master key: loading it, creating it on the first start,
 * recognising a wrong one, and what is derived from it.
 *
 * The master key never enters the database. From it come a key that seals
 * every file's own key and the upload names (XChaCha20-Poly1305, bound to
 * what they belong to), a key for the content addresses (so a stolen disk
 * cannot be searched for a known file by its plain SHA-256), and a check
 * value the database keeps: a restored backup with the wrong key, or a lost
 * key replaced by a fresh one, is refused instead of silently making every
 * earlier file unreadable. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/log.h"
#include "media_internal.h"

#define KDF_CTX "pvyhsmed"

void media_keys_derive(const unsigned char master[32], media_keys *k) {
    crypto_kdf_derive_from_key(k->wrap, sizeof k->wrap, 1, KDF_CTX, master);
    crypto_kdf_derive_from_key(k->addr, sizeof k->addr, 2, KDF_CTX, master);
    crypto_kdf_derive_from_key(k->check, sizeof k->check, 3, KDF_CTX, master);
}

static int decode_key(const char *text, size_t n, unsigned char master[32], const char *where,
                      hs_err *err) {
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ')) n--;
    size_t len = 0;
    if (hs_b64_decode(text, n, master, 32, &len, false) < 0 || len != 32)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "%s does not hold a media key (32 bytes in base64)", where);
    return 0;
}

int media_master_load(const char *path, unsigned char master[32], bool *missing, hs_err *err) {
    *missing = false;
    const char *env = getenv("PVYHS_MEDIA_KEY");
    if (env && *env) return decode_key(env, strlen(env), master, "PVYHS_MEDIA_KEY", err);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) {
            *missing = true;
            return 0;
        }
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot read the media key %s: %s", path,
                          strerror(errno));
    }
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    int rc = decode_key(buf, n, master, path, err);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

/* A new key, written where nothing exists yet (O_EXCL), readable by us only. */
static int create_master(const char *path, unsigned char master[32], hs_err *err) {
    randombytes_buf(master, 32);
    char *b64 = hs_b64_encode(master, 32, false);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0) {
        rc = hs_err_set(err, 500, "M_UNKNOWN", "cannot create the media key %s: %s", path,
                        strerror(errno));
    } else {
        size_t n = strlen(b64);
        if (write(fd, b64, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
            rc = hs_err_set(err, 500, "M_UNKNOWN", "cannot write the media key %s", path);
        close(fd);
        if (rc < 0) unlink(path);
    }
    sodium_memzero(b64, strlen(b64));
    free(b64);
    return rc;
}

static int stored_check(db_conn *c, unsigned char out[32], bool *have, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT check_value FROM media_key_check");
    PGresult *res = db_run_ex(c, &q, 0, NULL, NULL, NULL, 1, err);
    if (!res) return -1;
    *have = PQntuples(res) == 1 && PQgetlength(res, 0, 0) == 32;
    if (*have) memcpy(out, PQgetvalue(res, 0, 0), 32);
    PQclear(res);
    return 0;
}

static int record_check(db_conn *c, const unsigned char check[32], hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO media_key_check (check_value) VALUES ($1) ON CONFLICT DO NOTHING");
    PGresult *res = db_run_ex(c, &ins, 1, (const char *[]){(const char *)check}, (int[]){32},
                              (int[]){1}, 0, err);
    PQclear(res);
    return res ? 0 : -1;
}

/* Load or create the key and match it against the database's check value. */
static int open_keys(hs_server *srv, db_conn *c, media_keys *k, hs_err *err) {
    const char *path = srv->cfg->media_encryption_key_path;
    unsigned char master[32], have_check[32];
    bool missing, have;
    if (media_master_load(path, master, &missing, err) < 0 ||
        stored_check(c, have_check, &have, err) < 0)
        return -1;
    if (missing && have)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "the media key %s is missing, but the media store was written with "
                          "one: restore it from your backup (or give it in PVYHS_MEDIA_KEY)",
                          path);
    if (missing) {
        if (create_master(path, master, err) < 0) return -1;
        hs_info("generated the media encryption key %s: back it up (with the signing key); "
                "without it no stored media can be read", path);
    }
    media_keys_derive(master, k);
    sodium_memzero(master, sizeof master);
    if (!have) {
        if (record_check(c, k->check, err) < 0 || stored_check(c, have_check, &have, err) < 0)
            return -1;
    }
    if (!have || sodium_memcmp(have_check, k->check, 32) != 0)
        return hs_err_set(err, 500, "M_UNKNOWN",
                          "the media key %s is not the key this server's media was stored with: "
                          "restore the right one from your backup",
                          getenv("PVYHS_MEDIA_KEY") && *getenv("PVYHS_MEDIA_KEY")
                              ? "in PVYHS_MEDIA_KEY" : path);
    return 0;
}

static pthread_mutex_t keys_mu = PTHREAD_MUTEX_INITIALIZER;
static media_keys the_keys;
static bool keys_ready;

int media_start(hs_server *srv, hs_err *err) {
    pthread_mutex_lock(&keys_mu);
    int rc = 0;
    if (!keys_ready) {
        db_conn *c = db_acquire(srv->db, err);
        rc = c ? open_keys(srv, c, &the_keys, err) : -1;
        db_release(srv->db, c);
        keys_ready = rc == 0;
    }
    pthread_mutex_unlock(&keys_mu);
    return rc;
}

const media_keys *media_keys_get(hs_server *srv, hs_err *err) {
    hs_err why = {0};
    if (media_start(srv, &why) == 0) return &the_keys;
    hs_error("media: %s", why.msg);
    hs_err_set(err, 500, "M_UNKNOWN", "the media store is unavailable (see the server log)");
    return NULL;
}

void media_wrap_key(const media_keys *k, const unsigned char key[MEDIA_KEY_LEN],
                    const unsigned char *ad, size_t adlen, unsigned char *out) {
    unsigned char *nonce = out;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                               NULL, key, MEDIA_KEY_LEN, ad, adlen, NULL, nonce,
                                               k->wrap);
}

int media_unwrap_key(const media_keys *k, const unsigned char *in, size_t inlen,
                     const unsigned char *ad, size_t adlen, unsigned char key[MEDIA_KEY_LEN]) {
    const size_t np = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    if (inlen != MEDIA_WRAPPED_LEN) return -1;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, in + np, inlen - np, ad,
                                                      adlen, in, k->wrap);
}

unsigned char *media_seal_str(const media_keys *k, const char *s, const char *ad, size_t *outlen) {
    const size_t np = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    size_t n = strlen(s);
    *outlen = np + n + crypto_aead_xchacha20poly1305_ietf_ABYTES;
    unsigned char *out = malloc(*outlen);
    randombytes_buf(out, np);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + np, NULL, (const unsigned char *)s, n,
                                               (const unsigned char *)ad, strlen(ad), NULL, out,
                                               k->wrap);
    return out;
}

char *media_open_str(const media_keys *k, const unsigned char *in, size_t inlen, const char *ad) {
    const size_t np = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    const size_t ab = crypto_aead_xchacha20poly1305_ietf_ABYTES;
    if (inlen < np + ab) return NULL;
    char *out = malloc(inlen - np - ab + 1);
    unsigned long long n = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &n, NULL, in + np,
                                                   inlen - np, (const unsigned char *)ad,
                                                   strlen(ad), in, k->wrap) != 0) {
        free(out);
        return NULL;
    }
    out[n] = 0;
    return out;
}
