/* signing.h — ed25519 signing keys and signed JSON, per the spec appendix.
 *
 * Key files use Synapse's format, one key per line: "ed25519 <version> <seed>"
 * where <seed> is the unpadded base64 of the 32-byte seed; the key ID is then
 * "ed25519:<version>". */
#ifndef HS_SIGNING_H
#define HS_SIGNING_H

#include <jansson.h>
#include <stdbool.h>

#include "err.h"

typedef struct hs_signing_key {
    char key_id[64];          /* "ed25519:a_AbCd" */
    unsigned char seed[32];
    unsigned char pk[32];
    unsigned char sk[64];     /* libsodium's secret key: seed || pk */
} hs_signing_key;

/* A fresh key with version "a_" plus 4 random alphanumerics, as Synapse makes. */
int hs_signing_key_generate(hs_signing_key *k);

/* Make k from a 32-byte seed and a key version (the part after "ed25519:",
 * 1-55 characters of [A-Za-z0-9._~-], the spec's opaque identifier grammar).
 * Deterministic: the spec's test vectors and the key file are seeds. */
int hs_signing_key_from_seed(hs_signing_key *k, const char *version,
                             const unsigned char seed[32], hs_err *err);

/* Overwrite k's secrets (sodium_memzero) once it is no longer needed. */
void hs_signing_key_wipe(hs_signing_key *k);

/* Read the first ed25519 key of a Synapse-format key file. */
int hs_signing_key_load(const char *path, hs_signing_key *k, hs_err *err);

/* Write k in Synapse's format, mode 0600; refuses to overwrite an existing file. */
int hs_signing_key_save(const char *path, const hs_signing_key *k, hs_err *err);

/* Unpadded standard base64 of the public key (malloc'd). */
char *hs_signing_key_public_b64(const hs_signing_key *k);

/* Sign obj (a JSON object) in place: computes the signature over the canonical
 * JSON of obj without "signatures" and "unsigned", then adds it at
 * signatures[entity][key_id], keeping other signatures and restoring "unsigned". */
int hs_json_sign(json_t *obj, const char *entity, const hs_signing_key *k, hs_err *err);

/* Check signatures[entity][key_id] on obj against pk. Returns 0 when it
 * verifies; -1 with 401 M_UNAUTHORIZED (bad/absent signature) or 400 M_BAD_JSON. */
int hs_json_verify(const json_t *obj, const char *entity, const char *key_id,
                   const unsigned char pk[32], hs_err *err);

/* The content hash of an event: SHA-256 of the canonical JSON of the event
 * without "unsigned", "signatures" and "hashes". */
int hs_content_hash(const json_t *event, unsigned char out[32], hs_err *err);

/* Set event.hashes.sha256 to the unpadded base64 content hash. */
int hs_event_add_content_hash(json_t *event, hs_err *err);

#endif
