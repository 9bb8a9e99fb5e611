/* blob.c — encrypted files in the media store.
 *
 * A file is "PVYHSM1\n", a secretstream (XChaCha20-Poly1305) header, then the
 * plaintext in sealed messages of MEDIA_CHUNK bytes, the last one tagged
 * FINAL: a truncated, reordered or altered file fails to open rather than
 * yielding wrong bytes. Each file has its own random key. Files are written
 * to <store>/tmp first, while the content address is computed (HMAC-SHA-256
 * under a key derived from the master key; OpenSSL's, which uses the CPU's
 * SHA instructions and is 2-4 times faster than libsodium's), and moved to
 * <store>/blobs/ab/cd/<address> once the database says the content is new. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "homeserver/core/log.h"
#include "media_internal.h"

#define MAGIC "PVYHSM1\n"
#define MAGIC_LEN 8
#define HDR_LEN crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define SEALED_CHUNK (MEDIA_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)

struct media_writer {
    int fd;
    char *tmp_path, *final_path;
    bool finished;
    crypto_secretstream_xchacha20poly1305_state ss;
    EVP_MAC_CTX *mac;
    unsigned char key[MEDIA_KEY_LEN];
    unsigned char address[MEDIA_ADDR_LEN];
    unsigned char *buf, *out; /* one message of plaintext; its sealed form */
    size_t fill;
    long long length;
};

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

static ssize_t read_all(int fd, unsigned char *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int media_mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0700) < 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

char *media_blob_path(const char *store, const unsigned char *address) {
    char hex[MEDIA_ADDR_LEN * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, address, MEDIA_ADDR_LEN);
    char *p;
    if (asprintf(&p, "%s/blobs/%.2s/%.2s/%s", store, hex, hex + 2, hex) < 0) return NULL;
    return p;
}

static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static void fetch_hmac(void) { hmac = EVP_MAC_fetch(NULL, "HMAC", NULL); }

/* HMAC-SHA-256 keyed by the address key. NULL if OpenSSL has none. */
static EVP_MAC_CTX *address_mac(const media_keys *k) {
    pthread_once(&hmac_once, fetch_hmac);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM ps[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                       OSSL_PARAM_construct_end()};
    if (ctx && !EVP_MAC_init(ctx, k->addr, sizeof k->addr, ps)) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

media_writer *media_writer_new(const char *store, const media_keys *k, hs_err *err) {
    char *dir;
    if (asprintf(&dir, "%s/tmp", store) < 0) return NULL;
    media_writer *w = calloc(1, sizeof *w);
    w->fd = -1;
    if (media_mkdirs(dir) < 0 || asprintf(&w->tmp_path, "%s/up-XXXXXX", dir) < 0) {
        hs_err_set(err, 500, "M_UNKNOWN", "cannot write to the media store");
        free(dir), free(w);
        return NULL;
    }
    free(dir);
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    w->buf = malloc(MEDIA_CHUNK);
    w->out = malloc(SEALED_CHUNK);
    unsigned char hdr[HDR_LEN];
    crypto_secretstream_xchacha20poly1305_keygen(w->key);
    crypto_secretstream_xchacha20poly1305_init_push(&w->ss, hdr, w->key);
    w->mac = address_mac(k);
    if (w->fd < 0 || !w->mac || write_all(w->fd, (const unsigned char *)MAGIC, MAGIC_LEN) < 0 ||
        write_all(w->fd, hdr, HDR_LEN) < 0) {
        hs_err_set(err, 500, "M_UNKNOWN", "cannot write to the media store: %s", strerror(errno));
        media_writer_free(w);
        return NULL;
    }
    return w;
}

static int seal(media_writer *w, unsigned char tag, hs_err *err) {
    unsigned long long clen;
    crypto_secretstream_xchacha20poly1305_push(&w->ss, w->out, &clen, w->buf, w->fill, NULL, 0,
                                               tag);
    w->fill = 0;
    if (write_all(w->fd, w->out, (size_t)clen) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot write to the media store: %s",
                          strerror(errno));
    return 0;
}

int media_writer_write(media_writer *w, const void *data, size_t n, hs_err *err) {
    const unsigned char *p = data;
    if (!EVP_MAC_update(w->mac, p, n))
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot hash the upload");
    w->length += (long long)n;
    while (n) {
        size_t take = MEDIA_CHUNK - w->fill;
        if (take > n) take = n;
        memcpy(w->buf + w->fill, p, take);
        w->fill += take, p += take, n -= take;
        /* A full message is sealed only once more data exists, so the FINAL
         * tag always lands on the last one. */
        if (w->fill == MEDIA_CHUNK && n && seal(w, 0, err) < 0) return -1;
    }
    return 0;
}

int media_writer_finish(media_writer *w, hs_err *err) {
    if (w->finished) return 0;
    if (seal(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL, err) < 0) return -1;
    if (fsync(w->fd) < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot flush the media store: %s",
                          strerror(errno));
    size_t alen = 0;
    if (!EVP_MAC_final(w->mac, w->address, &alen, sizeof w->address) || alen != MEDIA_ADDR_LEN)
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot hash the upload");
    w->finished = true;
    return 0;
}

long long media_writer_length(const media_writer *w) { return w->length; }
const unsigned char *media_writer_address(const media_writer *w) { return w->address; }
const unsigned char *media_writer_key(const media_writer *w) { return w->key; }

int media_writer_install(media_writer *w, const char *store, hs_err *err) {
    if (w->final_path) {
        /* Again, after a retried transaction: only fine if the file at the
         * address is still ours (another upload may have placed its own). */
        struct stat mine, there;
        if (fstat(w->fd, &mine) == 0 && stat(w->final_path, &there) == 0 &&
            mine.st_ino == there.st_ino && mine.st_dev == there.st_dev)
            return 0;
        return hs_err_set(err, 500, "M_UNKNOWN", "the file changed while it was stored; retry");
    }
    char *path = media_blob_path(store, w->address);
    char *copy = strdup(path);
    const char *dir = dirname(copy);
    int rc = 0;
    if (media_mkdirs(dir) < 0 || rename(w->tmp_path, path) < 0) {
        rc = hs_err_set(err, 500, "M_UNKNOWN", "cannot store the file: %s", strerror(errno));
        free(path);
    } else {
        /* The rename must survive a crash as much as the database row will. */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) fsync(dfd), close(dfd);
        w->final_path = path;
    }
    free(copy);
    return rc;
}

void media_writer_free(media_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    EVP_MAC_CTX_free(w->mac);
    if (!w->final_path && w->tmp_path) unlink(w->tmp_path);
    sodium_memzero(w->key, sizeof w->key);
    if (w->buf) sodium_memzero(w->buf, MEDIA_CHUNK);
    free(w->buf), free(w->out);
    free(w->tmp_path), free(w->final_path);
    free(w);
}

struct media_reader {
    int fd;
    crypto_secretstream_xchacha20poly1305_state ss;
    unsigned char *in, *buf;
    size_t pos, fill;
    bool done;
    long long next; /* index of the next message to open */
};

media_reader *media_reader_open(const char *store, const unsigned char *address,
                                const unsigned char key[MEDIA_KEY_LEN], hs_err *err) {
    char *path = media_blob_path(store, address);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    free(path);
    unsigned char head[MAGIC_LEN + HDR_LEN];
    if (fd < 0 || read_all(fd, head, sizeof head) != (ssize_t)sizeof head ||
        memcmp(head, MAGIC, MAGIC_LEN) != 0) {
        hs_err_set(err, 500, "M_UNKNOWN", "the stored file is missing or damaged");
        if (fd >= 0) close(fd);
        return NULL;
    }
    media_reader *r = calloc(1, sizeof *r);
    r->fd = fd;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&r->ss, head + MAGIC_LEN, key) != 0) {
        hs_err_set(err, 500, "M_UNKNOWN", "the stored file is damaged");
        media_reader_free(r);
        return NULL;
    }
    r->in = malloc(SEALED_CHUNK);
    r->buf = malloc(MEDIA_CHUNK);
    return r;
}

/* Open the next sealed message. 0, or -1 if it does not authenticate. */
static int next_message(media_reader *r) {
    ssize_t got = read_all(r->fd, r->in, SEALED_CHUNK);
    unsigned long long n = 0;
    unsigned char tag = 0;
    if (got < (ssize_t)crypto_secretstream_xchacha20poly1305_ABYTES ||
        crypto_secretstream_xchacha20poly1305_pull(&r->ss, r->buf, &n, &tag, r->in, (size_t)got,
                                                   NULL, 0) != 0)
        return -1;
    r->pos = 0, r->fill = (size_t)n;
    r->next++;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        unsigned char extra;
        if (read_all(r->fd, &extra, 1) != 0) return -1; /* nothing may follow FINAL */
        r->done = true;
    } else if (got != SEALED_CHUNK) {
        return -1; /* cut short */
    }
    return 0;
}

ssize_t media_reader_read(media_reader *r, void *out, size_t n) {
    while (r->pos == r->fill) {
        if (r->done) return 0;
        if (next_message(r) < 0) return -1;
    }
    size_t take = r->fill - r->pos;
    if (take > n) take = n;
    memcpy(out, r->buf + r->pos, take);
    r->pos += take;
    return (ssize_t)take;
}

/* Seeking. secretstream is sequential: after each message the state's
 * nonce (a 4-byte little-endian counter, then 8 bytes of "inonce") moves on
 * by XORing the first 8 bytes of the message's MAC -- its last 16 bytes, in
 * the clear in the file -- into the inonce and adding one to the counter (the
 * key changes only when the counter wraps, after 2^32 messages). So the state
 * for message i follows from the MACs of the messages before it, read without
 * decrypting them. Every message served still authenticates under its own MAC
 * and position, so a range only ever yields bytes that were written there;
 * damage in the messages skipped goes unnoticed, as it must for a range.
 * This is the algorithm as libsodium documents it, checked once per process
 * against libsodium itself (check_fast_forward), with reading and discarding
 * as the fallback. */
#define COUNTER_LEN 4
#define INONCE_LEN 8
#define MAC_LEN 16

static void advance(crypto_secretstream_xchacha20poly1305_state *ss, const unsigned char *mac) {
    for (int i = 0; i < INONCE_LEN; i++) ss->nonce[COUNTER_LEN + i] ^= mac[i];
    sodium_increment(ss->nonce, COUNTER_LEN);
}

static bool ff_ok;
static pthread_once_t ff_once = PTHREAD_ONCE_INIT;

static void check_fast_forward(void) {
    unsigned char key[MEDIA_KEY_LEN], hdr[HDR_LEN], m[3][40], c[3][40 + MAC_LEN + 1], out[40];
    crypto_secretstream_xchacha20poly1305_state push, pull;
    crypto_secretstream_xchacha20poly1305_keygen(key);
    crypto_secretstream_xchacha20poly1305_init_push(&push, hdr, key);
    for (int i = 0; i < 3; i++) {
        randombytes_buf(m[i], sizeof m[i]);
        crypto_secretstream_xchacha20poly1305_push(&push, c[i], NULL, m[i], sizeof m[i], NULL, 0,
                                                   i == 2 ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : 0);
    }
    unsigned long long n = 0;
    unsigned char tag = 0;
    ff_ok = crypto_secretstream_xchacha20poly1305_init_pull(&pull, hdr, key) == 0;
    for (int i = 0; i < 2; i++) advance(&pull, c[i] + sizeof c[i] - MAC_LEN);
    ff_ok = ff_ok &&
            crypto_secretstream_xchacha20poly1305_pull(&pull, out, &n, &tag, c[2], sizeof c[2],
                                                       NULL, 0) == 0 &&
            n == sizeof out && !memcmp(out, m[2], sizeof out) &&
            tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (!ff_ok)
        hs_warn("media: libsodium's secretstream does not fast-forward as documented; range "
                "requests decrypt from the start of each file");
    sodium_memzero(key, sizeof key);
}

bool media_reader_fast_seek(void) {
    pthread_once(&ff_once, check_fast_forward);
    return ff_ok;
}

int media_reader_seek(media_reader *r, long long offset) {
    if (offset < 0 || r->next != 0 || r->fill != 0) return -1; /* only from the start */
    long long skip = offset / MEDIA_CHUNK;
    if (skip >= (1LL << 32)) return -1; /* the key would have changed: never in practice */
    if (skip > 0 && media_reader_fast_seek()) {
        /* The messages before the one holding offset are all full ones; the
         * last one read must not be FINAL, which the next pull checks. */
        for (long long i = 0; i < skip; i++) {
            unsigned char mac[MAC_LEN];
            off_t at = (off_t)(MAGIC_LEN + HDR_LEN) + (off_t)(i + 1) * SEALED_CHUNK - MAC_LEN;
            if (pread(r->fd, mac, MAC_LEN, at) != MAC_LEN) return -1;
            advance(&r->ss, mac);
        }
        if (lseek(r->fd, (off_t)(MAGIC_LEN + HDR_LEN) + (off_t)skip * SEALED_CHUNK, SEEK_SET) < 0)
            return -1;
        r->next = skip;
        offset -= skip * MEDIA_CHUNK;
    }
    /* Within a message (or everything, without fast-forward): read past it. */
    unsigned char sink[4096];
    while (offset > 0) {
        ssize_t n = media_reader_read(r, sink, offset < (long long)sizeof sink ? (size_t)offset
                                                                               : sizeof sink);
        if (n <= 0) return -1;
        offset -= n;
    }
    return 0;
}

void media_reader_free(media_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    if (r->buf) sodium_memzero(r->buf, MEDIA_CHUNK);
    free(r->in), free(r->buf);
    sodium_memzero(&r->ss, sizeof r->ss);
    free(r);
}

unsigned char *media_blob_slurp(const char *store, const unsigned char *address,
                                const unsigned char key[MEDIA_KEY_LEN], size_t len, hs_err *err) {
    media_reader *r = media_reader_open(store, address, key, err);
    if (!r) return NULL;
    unsigned char *buf = malloc(len ? len : 1);
    size_t got = 0;
    ssize_t n = 1;
    while (buf && got < len && (n = media_reader_read(r, buf + got, len - got)) > 0)
        got += (size_t)n;
    unsigned char extra;
    if (n >= 0 && got == len) n = media_reader_read(r, &extra, 1); /* must be the end */
    media_reader_free(r);
    if (!buf || n != 0 || got != len) {
        free(buf);
        hs_err_set(err, 500, "M_UNKNOWN", "the stored file is damaged");
        return NULL;
    }
    return buf;
}
