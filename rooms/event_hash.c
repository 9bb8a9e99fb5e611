/* event_hash.c — reference hashes, event IDs, content hashes and the signing
 * of locally built events (server-server API "Signing Events"). */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_internal.h"
#include "homeserver/core/base64.h"
#include "homeserver/core/json.h"

unsigned room_canon_flags(const room_version *v) {
    return v->strict_canonicaljson ? 0 : HS_JSON_CANON_ANY_INT;
}

static int oom(hs_err *err) { return hs_err_set(err, 500, "M_UNKNOWN", "Out of memory"); }

/* SHA-256 of the canonical JSON of obj without the keys in skip. */
static int hash_canonical(const json_t *obj, const char *const *skip, unsigned flags,
                          unsigned char out[32], hs_err *err) {
    size_t len = 0;
    char *canon = hs_json_canonical_ex(obj, skip, flags, &len, err);
    if (!canon) return -1;
    crypto_hash_sha256(out, (const unsigned char *)canon, len);
    free(canon);
    return 0;
}

int room_event_reference_hash(const room_version *v, const json_t *event, unsigned char out[32],
                              hs_err *err) {
    static const char *const skip[] = {"signatures", "unsigned", NULL};
    if (!v || !json_is_object(event))
        return hs_err_set(err, 400, "M_BAD_JSON", "An event must be a JSON object");
    /* Shared values are fine: the redacted copy is only read, then dropped. */
    json_t *redacted = room_redact_build(v, event, true);
    if (!redacted) return oom(err);
    int rc = hash_canonical(redacted, skip, room_canon_flags(v), out, err);
    json_decref(redacted);
    return rc;
}

char *room_event_compute_id(const room_version *v, const json_t *event, hs_err *err) {
    if (v && v->event_format == ROOM_EVFMT_V1) {
        hs_err_set(err, 400, "M_BAD_JSON",
                   "Room version %s carries event IDs; they are not computed", v->id);
        return NULL;
    }
    unsigned char hash[32];
    if (room_event_reference_hash(v, event, hash, err)) return NULL;
    char *b64 = hs_b64_encode(hash, sizeof hash, v->event_format >= ROOM_EVFMT_V4);
    char *id = b64 ? malloc(strlen(b64) + 2) : NULL;
    if (!id) {
        free(b64);
        oom(err);
        return NULL;
    }
    id[0] = '$';
    strcpy(id + 1, b64);
    free(b64);
    return id;
}

/* Other servers write hashes in either base64 alphabet, padded or not. */
static int decode_hash(const char *s, unsigned char out[32]) {
    size_t n = 0, len = strlen(s);
    if (hs_b64_decode(s, len, out, 32, &n, false) == 0 && n == 32) return 0;
    if (hs_b64_decode(s, len, out, 32, &n, true) == 0 && n == 32) return 0;
    return -1;
}

int room_event_check_content_hash(const json_t *event, hs_err *err) {
    static const char *const skip[] = {"unsigned", "signatures", "hashes", NULL};
    if (!json_is_object(event))
        return hs_err_set(err, 400, "M_BAD_JSON", "An event must be a JSON object");
    const char *want = room_json_str(json_object_get(event, "hashes"), "sha256");
    unsigned char expected[32], got[32];
    if (!want || decode_hash(want, expected))
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "Event has no valid hashes.sha256");
    /* Any integer: events of room versions 1–5 may hold big ones, and those
     * of later versions were range-checked when parsed. */
    if (hash_canonical(event, skip, HS_JSON_CANON_ANY_INT, got, err)) return -1;
    if (sodium_memcmp(got, expected, 32) != 0)
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "Content hash does not match the event");
    return 0;
}

/* "$" + 24 random alphanumerics + ":" + server: unguessable and unique. */
static int set_random_event_id(json_t *event, const char *server_name, hs_err *err) {
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    char local[25];
    if (sodium_init() < 0) return hs_err_set(err, 500, "M_UNKNOWN", "libsodium unavailable");
    for (size_t i = 0; i < 24; i++) local[i] = alnum[randombytes_uniform(sizeof alnum - 1)];
    local[24] = '\0';
    json_t *id = json_sprintf("$%s:%s", local, server_name);
    if (!id || json_object_set_new(event, "event_id", id)) return oom(err);
    return 0;
}

int room_event_finish(const room_version *v, json_t *event, const char *server_name,
                      const hs_signing_key *key, hs_err *err) {
    if (!v || !json_is_object(event) || !server_name || !key)
        return hs_err_set(err, 500, "M_UNKNOWN", "room_event_finish: bad arguments");
    /* The room_id of a v12 create event is its own hash; it cannot be inside. */
    if (v->hydra && room_is_create(room_json_str(event, "type"), room_json_str(event, "state_key")))
        json_object_del(event, "room_id");
    /* The event ID is hashed and signed in v1–2, so it comes first. A caller
     * that already chose one (tests, the spec's vectors) keeps it. */
    if (v->event_format == ROOM_EVFMT_V1 && !json_object_get(event, "event_id") &&
        set_random_event_id(event, server_name, err))
        return -1;
    if (hs_event_add_content_hash(event, err)) return -1;
    /* Deep copy: signing adds to the copy's "signatures", which is then moved
     * over whole (it keeps any signatures the event already had). */
    json_t *redacted = room_redact_build(v, event, false);
    if (!redacted) return oom(err);
    if (hs_json_sign(redacted, server_name, key, err)) {
        json_decref(redacted);
        return -1;
    }
    int rc = json_object_set(event, "signatures", json_object_get(redacted, "signatures"));
    json_decref(redacted);
    return rc ? oom(err) : 0;
}
