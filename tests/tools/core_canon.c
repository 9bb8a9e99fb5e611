/* core_canon.c — canonical JSON, signing and hashing as a line filter, so
 * tests/diff/canonical_diff.py can compare us with Python's canonicaljson and
 * signedjson byte for byte.
 *
 * Reads one JSON document per line on stdin and writes one line per input:
 *   (default)              its canonical JSON
 *   --sign SEED_B64        the canonical JSON of it signed with that seed
 *   --verify PUBKEY_B64    OK, or FAIL <errcode> (the object's signature)
 *   --hash                 the unpadded base64 content hash (event hashing)
 * --entity NAME and --key-version V choose the signer (default domain, 1).
 * A line that cannot be handled gives "ERROR <errcode>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/json.h"
#include "homeserver/core/signing.h"

enum mode { CANON, SIGN, VERIFY, HASH };

typedef struct opts {
    enum mode mode;
    const char *key_b64;
    const char *entity;
    const char *version;
    hs_signing_key key;
    unsigned char pk[32];
    char key_id[64];
} opts;

static int usage(void) {
    fprintf(stderr, "usage: core_canon [--sign SEED_B64 | --verify PUBKEY_B64 | --hash]"
                    " [--entity NAME] [--key-version V] < lines\n");
    return 2;
}

static int decode32(const char *b64, unsigned char out[32]) {
    size_t n = 0;
    return hs_b64_decode(b64, strlen(b64), out, 32, &n, false) == 0 && n == 32 ? 0 : -1;
}

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){.mode = CANON, .entity = "domain", .version = "1"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hash")) { o->mode = HASH; continue; }
        if (!val) return -1;
        if (!strcmp(a, "--sign")) o->mode = SIGN, o->key_b64 = val;
        else if (!strcmp(a, "--verify")) o->mode = VERIFY, o->key_b64 = val;
        else if (!strcmp(a, "--entity")) o->entity = val;
        else if (!strcmp(a, "--key-version")) o->version = val;
        else return -1;
        i++;
    }
    snprintf(o->key_id, sizeof o->key_id, "ed25519:%s", o->version);
    unsigned char seed[32];
    hs_err err = {0};
    if (o->mode == SIGN &&
        (decode32(o->key_b64, seed) || hs_signing_key_from_seed(&o->key, o->version, seed, &err)))
        return -1;
    if (o->mode == VERIFY && decode32(o->key_b64, o->pk)) return -1;
    return 0;
}

static void put_line(const char *s, size_t len) {
    fwrite(s, 1, len, stdout);
    fputc('\n', stdout);
}

/* Handle one parsed document; returns 0 or -1 with err filled. */
static int handle(const opts *o, json_t *v, hs_err *err) {
    char *out = NULL;
    size_t len = 0;
    switch (o->mode) {
    case SIGN:
        if (hs_json_sign(v, o->entity, &o->key, err)) return -1;
        /* fall through */
    case CANON:
        if (!(out = hs_json_canonical(v, &len, err))) return -1;
        break;
    case VERIFY:
        if (hs_json_verify(v, o->entity, o->key_id, o->pk, err)) {
            printf("FAIL %s\n", err->errcode);
            return 0;
        }
        out = strdup("OK");
        len = 2;
        break;
    case HASH: {
        unsigned char h[32];
        if (hs_content_hash(v, h, err)) return -1;
        out = hs_b64_encode(h, sizeof h, false);
        len = strlen(out);
        break;
    }
    }
    put_line(out, len);
    free(out);
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    if (parse_args(argc, argv, &o)) return usage();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if (n > 0 && line[n - 1] == '\n') n--;
        hs_err err = {0};
        json_t *v = hs_json_parse(line, (size_t)n, &err);
        if (!v || handle(&o, v, &err)) printf("ERROR %s\n", err.errcode);
        json_decref(v);
    }
    free(line);
    hs_signing_key_wipe(&o.key);
    return fflush(stdout) == 0 ? 0 : 1;
}
