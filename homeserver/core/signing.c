/* signing.c — ed25519 signing keys, signed JSON and event content hashes.
 *
 * Keys are kept in Synapse's key file format so that an admin can move a
 * server's identity between pvyhs and Synapse. Signing and hashing follow the
 * spec appendix "Signing JSON": the bytes covered are the canonical JSON of
 * the object without its unsigned parts, which hs_json_canonical_ex leaves
 * out while writing, so the object is never copied. */
#include "signing.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base64.h"
#include "json.h"

#define KEY_FILE_MAX 65536 /* a key file is a few lines; refuse anything huge */
/* What fits in hs_signing_key.key_id after "ed25519:" and before the NUL. */
#define KEY_VERSION_MAX (sizeof ((hs_signing_key){0}).key_id - sizeof "ed25519:")

/* What a signature does not cover, and what a content hash does not cover. */
static const char *const not_signed[] = {"signatures", "unsigned", NULL};
static const char *const not_hashed[] = {"unsigned", "signatures", "hashes", NULL};

/* sodium_init() picks the fastest implementations and readies the RNG; once
 * per process is enough, and pthread_once makes that race-free and cheap. */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_status = -1;

static void sodium_start(void) { sodium_status = sodium_init() < 0 ? -1 : 0; }

static int sodium_ready(hs_err *err) {
    pthread_once(&sodium_once, sodium_start);
    if (sodium_status == 0) return 0;
    return hs_err_set(err, 500, "M_UNKNOWN", "libsodium failed to initialise");
}

static int bad_json(hs_err *err, const char *what) {
    return hs_err_set(err, 400, "M_BAD_JSON", "Bad JSON: %s", what);
}

static int oom(hs_err *err) { return hs_err_set(err, 500, "M_UNKNOWN", "Out of memory"); }

/* ---- keys ---------------------------------------------------------------- */

static bool valid_version(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > KEY_VERSION_MAX) return false;
    return strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

int hs_signing_key_from_seed(hs_signing_key *k, const char *version,
                             const unsigned char seed[32], hs_err *err) {
    if (!valid_version(version))
        return hs_err_set(err, 500, "M_UNKNOWN", "Invalid signing key version");
    if (sodium_ready(err)) return -1;
    memset(k, 0, sizeof *k); /* no stale bytes after key_id's NUL */
    snprintf(k->key_id, sizeof k->key_id, "ed25519:%s", version);
    memcpy(k->seed, seed, sizeof k->seed);
    crypto_sign_seed_keypair(k->pk, k->sk, k->seed);
    return 0;
}

void hs_signing_key_wipe(hs_signing_key *k) { sodium_memzero(k, sizeof *k); }

int hs_signing_key_generate(hs_signing_key *k) {
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    if (sodium_ready(NULL)) return -1;
    char version[7] = "a_";
    for (int i = 2; i < 6; i++) version[i] = alnum[randombytes_uniform(sizeof alnum - 1)];
    version[6] = '\0';
    unsigned char seed[32];
    randombytes_buf(seed, sizeof seed);
    int rc = hs_signing_key_from_seed(k, version, seed, NULL);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

/* One line of a key file: "ed25519 <version> <seed>". Returns 0 with k
 * filled, 1 for a line to skip (blank, comment, another algorithm), -1 with
 * err for a malformed ed25519 line. Modifies line (strtok_r). */
static int parse_key_line(char *line, hs_signing_key *k, hs_err *err) {
    char *save = NULL;
    const char *alg = strtok_r(line, " \t\r\n", &save);
    if (!alg || alg[0] == '#' || strcmp(alg, "ed25519") != 0) return 1;
    const char *version = strtok_r(NULL, " \t\r\n", &save);
    const char *b64 = strtok_r(NULL, " \t\r\n", &save);
    if (!version || !b64 || strtok_r(NULL, " \t\r\n", &save))
        return hs_err_set(err, 500, "M_UNKNOWN", "Signing key line is not 'ed25519 <version> <seed>'");
    unsigned char seed[32];
    size_t n = 0;
    int rc = -1;
    if (hs_b64_decode(b64, strlen(b64), seed, sizeof seed, &n, false) || n != sizeof seed)
        hs_err_set(err, 500, "M_UNKNOWN", "Signing key seed is not 32 bytes of base64");
    else
        rc = hs_signing_key_from_seed(k, version, seed, err);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

/* Read a whole (small) file into a buffer the caller wipes and frees. Plain
 * read(2) rather than stdio, so no copy of the secret stays in a FILE buffer. */
static char *read_small_file(const char *path, size_t *len, hs_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hs_err_set(err, 500, "M_UNKNOWN", "Cannot open signing key %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = 0;
    ssize_t r = 0;
    while (buf && n < KEY_FILE_MAX && (r = read(fd, buf + n, KEY_FILE_MAX - n)) != 0) {
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf || r < 0 || n == KEY_FILE_MAX) {
        if (buf) sodium_memzero(buf, KEY_FILE_MAX);
        free(buf);
        hs_err_set(err, 500, "M_UNKNOWN", "Cannot read signing key %s", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int hs_signing_key_load(const char *path, hs_signing_key *k, hs_err *err) {
    size_t len = 0;
    char *buf = read_small_file(path, &len, err);
    if (!buf) return -1;
    int rc = 1;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && rc == 1;
         line = strtok_r(NULL, "\n", &save))
        rc = parse_key_line(line, k, err);
    sodium_memzero(buf, len);
    free(buf);
    if (rc == 1) return hs_err_set(err, 500, "M_UNKNOWN", "No ed25519 key in %s", path);
    return rc;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* O_EXCL: an existing key is a server's identity and must never be replaced
 * by accident. O_NOFOLLOW: nor written through a planted symlink. */
static int write_new_file(const char *path, const char *data, size_t n, hs_err *err) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return hs_err_set(err, 500, "M_UNKNOWN", "Cannot create signing key %s: %s", path,
                          strerror(errno));
    /* fchmod because the umask may have taken bits; 0600 is what Synapse uses. */
    int bad = fchmod(fd, 0600) || write_all(fd, data, n) || fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad) return 0;
    unlink(path); /* never leave a truncated key behind */
    return hs_err_set(err, 500, "M_UNKNOWN", "Cannot write signing key %s: %s", path,
                      strerror(saved));
}

int hs_signing_key_save(const char *path, const hs_signing_key *k, hs_err *err) {
    if (strncmp(k->key_id, "ed25519:", 8) != 0 || !valid_version(k->key_id + 8))
        return hs_err_set(err, 500, "M_UNKNOWN", "Invalid signing key ID");
    char *seed = hs_b64_encode(k->seed, sizeof k->seed, false);
    if (!seed) return oom(err);
    char line[128];
    int n = snprintf(line, sizeof line, "ed25519 %s %s\n", k->key_id + 8, seed);
    sodium_memzero(seed, strlen(seed));
    free(seed);
    int rc = write_new_file(path, line, (size_t)n, err);
    sodium_memzero(line, sizeof line);
    return rc;
}

char *hs_signing_key_public_b64(const hs_signing_key *k) {
    return hs_b64_encode(k->pk, sizeof k->pk, false);
}

/* ---- signed JSON --------------------------------------------------------- */

/* obj.signatures[entity], checked before anything is changed so that a
 * failing sign leaves obj as it was. Either may be NULL (absent). */
static int find_signatures(const json_t *obj, const char *entity, json_t **sigs,
                           json_t **mine, hs_err *err) {
    if (!json_is_object(obj)) return bad_json(err, "only objects can be signed");
    *sigs = json_object_get(obj, "signatures");
    *mine = NULL;
    if (!*sigs) return 0;
    if (!json_is_object(*sigs)) return bad_json(err, "'signatures' must be an object");
    *mine = json_object_get(*sigs, entity);
    if (*mine && !json_is_object(*mine)) return bad_json(err, "signatures of an entity must be an object");
    return 0;
}

/* Get (creating if absent) the object at parent[key]. */
static json_t *child_object(json_t *parent, const char *key, json_t *have) {
    if (have) return have;
    json_t *o = json_object();
    if (!o || json_object_set_new(parent, key, o) != 0) return NULL;
    return o;
}

int hs_json_sign(json_t *obj, const char *entity, const hs_signing_key *k, hs_err *err) {
    json_t *sigs, *mine;
    if (find_signatures(obj, entity, &sigs, &mine, err) || sodium_ready(err)) return -1;
    size_t len = 0;
    char *canon = hs_json_canonical_ex(obj, not_signed, 0, &len, err);
    if (!canon) return -1;
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)canon, len, k->sk);
    free(canon);
    char *b64 = hs_b64_encode(sig, sizeof sig, false);
    json_t *s = b64 ? json_string(b64) : NULL;
    free(b64);
    if (!s) return oom(err);
    if (!(sigs = child_object(obj, "signatures", sigs)) ||
        !(mine = child_object(sigs, entity, mine))) {
        json_decref(s);
        return hs_err_set(err, 500, "M_UNKNOWN", "Cannot add signature for %s", entity);
    }
    if (json_object_set_new(mine, k->key_id, s) != 0) return oom(err);
    return 0;
}

/* The signature obj.signatures[entity][key_id] as 64 bytes. A missing or
 * undecodable signature fails the check (401); a malformed container is bad
 * JSON (400). */
static int find_signature(const json_t *obj, const char *entity, const char *key_id,
                          unsigned char sig[crypto_sign_BYTES], hs_err *err) {
    json_t *sigs, *mine;
    if (find_signatures(obj, entity, &sigs, &mine, err)) return -1;
    if (!mine)
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "No signature from %s", entity);
    json_t *s = json_object_get(mine, key_id);
    if (!s)
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "No signature from %s with key %s",
                          entity, key_id);
    if (!json_is_string(s)) return bad_json(err, "a signature must be a string");
    size_t n = 0;
    if (hs_b64_decode(json_string_value(s), json_string_length(s), sig, crypto_sign_BYTES, &n,
                      false) != 0 ||
        n != crypto_sign_BYTES)
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "Invalid signature base64 from %s", entity);
    return 0;
}

int hs_json_verify(const json_t *obj, const char *entity, const char *key_id,
                   const unsigned char pk[32], hs_err *err) {
    if (strncmp(key_id, "ed25519:", 8) != 0)
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "Unsupported signing algorithm in %s",
                          key_id);
    unsigned char sig[crypto_sign_BYTES];
    if (find_signature(obj, entity, key_id, sig, err) || sodium_ready(err)) return -1;
    size_t len = 0;
    char *canon = hs_json_canonical_ex(obj, not_signed, 0, &len, err);
    if (!canon) return -1;
    int rc = crypto_sign_verify_detached(sig, (const unsigned char *)canon, len, pk);
    free(canon);
    if (rc != 0)
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "Invalid signature from %s with key %s",
                          entity, key_id);
    return 0;
}

/* ---- content hashes ------------------------------------------------------ */

int hs_content_hash(const json_t *event, unsigned char out[32], hs_err *err) {
    if (!json_is_object(event)) return bad_json(err, "an event must be an object");
    if (sodium_ready(err)) return -1;
    size_t len = 0;
    char *canon = hs_json_canonical_ex(event, not_hashed, 0, &len, err);
    if (!canon) return -1;
    crypto_hash_sha256(out, (const unsigned char *)canon, len);
    free(canon);
    return 0;
}

/* Other algorithms already in "hashes" are kept, as Synapse does. */
int hs_event_add_content_hash(json_t *event, hs_err *err) {
    json_t *hashes = json_object_get(event, "hashes");
    if (hashes && !json_is_object(hashes)) return bad_json(err, "'hashes' must be an object");
    unsigned char h[crypto_hash_sha256_BYTES];
    if (hs_content_hash(event, h, err)) return -1;
    char *b64 = hs_b64_encode(h, sizeof h, false);
    json_t *s = b64 ? json_string(b64) : NULL;
    free(b64);
    if (!s) return oom(err);
    if (!(hashes = child_object(event, "hashes", hashes))) {
        json_decref(s);
        return oom(err);
    }
    if (json_object_set_new(hashes, "sha256", s) != 0) return oom(err);
    return 0;
}
