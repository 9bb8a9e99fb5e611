/* e2ee_internal.h — helpers shared by the end-to-end encryption files
 * (keys.c, keys_claim.c, cross_signing.c, to_device.c, device_lists.c,
 * key_backup.c, room_keys.c). Not a contract: other areas use e2ee.h. */
#ifndef CLIENT_E2EE_INTERNAL_H
#define CLIENT_E2EE_INTERNAL_H

#include <stdbool.h>

#include "client.h"
#include "e2ee.h"

/* Per-file route registration, called by client_e2ee_routes. */
void e2ee_keys_routes(hs_router *rt);
void e2ee_claim_routes(hs_router *rt);
void e2ee_cross_signing_routes(hs_router *rt);
void e2ee_to_device_routes(hs_router *rt);
void e2ee_device_lists_routes(hs_router *rt);
void e2ee_key_backup_routes(hs_router *rt);
void e2ee_room_keys_routes(hs_router *rt);
void e2ee_dehydrated_routes(hs_router *rt);

/* ---- users and keys ------------------------------------------------------ */

/* The device keys are uploaded for (the token's, or a dehydrated device). */
typedef struct e2ee_dev {
    const char *user_id, *device_id;
} e2ee_dev;

/* Check and store the keys of a /keys/upload body (device_keys,
 * one_time_keys, fallback_keys) for dev, in the caller's transaction; the
 * devices row must exist. When the device keys changed, a device-lists
 * position is reserved into *pos (keep it across retries; release it with
 * e2ee_dl_done after COMMIT). 0, or -1 with err. */
int e2ee_keys_store(db_conn *c, const e2ee_dev *dev, const json_t *body, long long *pos,
                    hs_err *err);

/* The server name of a well-formed user ID ("@local:server"), else NULL. */
const char *e2ee_user_server(const char *user_id);

/* Whether user_id is a well-formed ID of a user of this server. */
bool e2ee_is_local(const hs_req *r, const char *user_id);

/* Decode an unpadded base64 ed25519 public key. 0, or -1 if it is not one. */
int e2ee_ed25519_decode(const char *b64, unsigned char pk[32]);

/* Check signatures[signer][key_id] on obj with the base64 public key pk_b64.
 * 0, or -1 with 400 M_INVALID_SIGNATURE (what names the failure). */
int e2ee_verify(const json_t *obj, const char *signer, const char *key_id, const char *pk_b64,
                const char *what, hs_err *err);

/* Canonical JSON of v (malloc'd), optionally without "signatures" and
 * "unsigned" (for comparing two copies of the same signed key). */
char *e2ee_canonical(const json_t *v, bool unsigned_only, hs_err *err);

/* Parse JSON text from our own tables (never fails on what we wrote; a NULL
 * return is a corrupted row). */
json_t *e2ee_parse_stored(const char *text);

/* A failure entry for per-key failure maps: {"errcode", "error"}. */
json_t *e2ee_failure(const hs_err *e);

/* ---- cross-signing keys -------------------------------------------------- */

/* The stored cross-signing key of user_id of keytype ("master",
 * "self_signing", "user_signing"), parsed, or NULL: absent (err->status 0)
 * or a database error (err set). */
json_t *e2ee_cs_key_load(db_conn *c, const char *user_id, const char *keytype, hs_err *err);

/* The public key of a CrossSigningKey: its single "ed25519:<pk>" entry whose
 * value is <pk>, a 32-byte key. Returns <pk> (borrowed from key) or NULL. */
const char *e2ee_cs_key_public(const json_t *key);

/* ---- transactions, streams and wake-ups ---------------------------------- */

/* BEGIN, fn, COMMIT on c (ROLLBACK when fn fails); a deadlock is retried. */
int e2ee_txn(db_conn *c, db_txn_fn fn, void *arg, hs_err *err);

/* A device-lists position, reserved (*pos stays when already > 0, so a
 * retried transaction keeps it). 0 or -1. */
int e2ee_dl_reserve(db_conn *c, long long *pos, hs_err *err);

/* A device-list change of user_id at pos: device_id is the device or the
 * cross-signing public key (NULL: none in particular); only_for limits who
 * sees it (NULL: everyone sharing a room with user_id). In the caller's
 * transaction. */
int e2ee_dl_record(db_conn *c, long long pos, const char *user_id, const char *device_id,
                   const char *only_for, hs_err *err);

/* After COMMIT (or ROLLBACK): release pos (if > 0) and wake the syncs that
 * can see a change to user_id's devices: only_for alone, or user_id and
 * everyone in its joined rooms. c outside a transaction. */
void e2ee_dl_done(db_conn *c, long long pos, const char *user_id, const char *only_for);

/* Rooms user_id is joined to (current state), as a NULL-terminated
 * malloc'd array of malloc'd strings (free with e2ee_strv_free); NULL on
 * error. */
char **e2ee_joined_rooms(db_conn *c, const char *user_id, size_t *n, hs_err *err);
void e2ee_strv_free(char **v);

/* OTK counts for a device as /keys/upload and /sync report them. */
json_t *e2ee_otk_count_object(db_conn *c, const char *user_id, const char *device_id,
                              hs_err *err);

/* ---- key backups (key_backup.c) ------------------------------------------ */

/* A backup version as the API names it: a positive decimal number. */
bool key_backup_version_number(const char *s, long long *v);

/* What the replacement rule looks at in a backed-up session key. */
typedef struct key_backup_session {
    bool verified;
    long long first_index, forwarded;
} key_backup_session;

/* The spec's replacement rule: does candidate beat the stored copy? The one
 * with is_verified, then the lower first_message_index, then the lower
 * forwarded_count; a tie keeps the stored one. */
bool key_backup_better(const key_backup_session *candidate, const key_backup_session *stored);

/* The user's current (newest, not deleted) backup version and its etag;
 * *version 0 when there is none. 0 or -1. */
int key_backup_current(db_conn *c, const char *user_id, long long *version, long long *etag,
                       hs_err *err);

/* How many session keys a version holds; -1 on error. */
long long key_backup_count(db_conn *c, const char *user_id, long long version, hs_err *err);

#endif
