/* event.h — a parsed, validated PDU of a given room version.
 *
 * The JSON stays the source of truth (it is what gets hashed and signed); the
 * struct caches the fields auth rules and state resolution need. */
#ifndef ROOM_EVENT_H
#define ROOM_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "homeserver/core/err.h"
#include "homeserver/core/signing.h"
#include "room_version.h"

#define ROOM_EVENT_MAX_BYTES 65536

typedef struct room_event {
    json_t *json;                 /* the whole PDU, owned reference */
    const room_version *ver;
    char *event_id;               /* carried (v1–2) or computed reference hash (v3+) */
    const char *room_id;          /* for v12 create events: derived "!<hash>" */
    const char *type;
    const char *sender;
    const char *state_key;        /* NULL for non-state events */
    const char *membership;       /* content.membership of m.room.member, else NULL */
    long long depth;
    long long origin_server_ts;
    const char **prev_events;     /* event IDs */
    size_t n_prev;
    const char **auth_events;
    size_t n_auth;
    const char *redacts;          /* m.room.redaction target (top level or content, per version) */
    json_t *content;              /* the content object (borrowed from json) */
    bool rejected;                /* set by whoever knows (storage): the event was rejected;
                                   * room_auth_check_auth_events refuses rejected auth events */
    char *owned_room_id;          /* internal: backs room_id when it is derived (v12 create) */
    bool policy_refused;          /* set by whoever asked (federation): the room's Policy
                                   * Server did not sign it, so room_receive soft-fails it
                                   * if the auth rules admit it */
    const char *oversized;        /* a key over 255 bytes but not 255 codepoints, in a
                                   * version before v11: room_auth_check rejects the event
                                   * (Synapse's OVERSIZED_EVENT), storage keeps it */
    long long stream_ordering;    /* set by room_send_local when it stored the event at a
                                   * reserved position (accepted, in the timeline); else 0 */
} room_event;

/* Parse and validate a PDU for version v: required keys and their types,
 * integer ranges, size limits (65,536 bytes canonical; IDs ≤ 255 bytes), and
 * the event ID (carried or computed). Takes its own reference to json.
 * Returns NULL with 400 M_BAD_JSON and a precise reason on any violation. */
room_event *room_event_parse(const room_version *v, json_t *json, hs_err *err);
void room_event_free(room_event *e);

/* An event read back from our own database: it was validated when stored and
 * its ID is known, so neither is done again (hashing every event of a large
 * state resolution would dominate it). */
room_event *room_event_parse_stored(const room_version *v, json_t *json, const char *event_id,
                                    hs_err *err);

/* The redacted copy of an event's JSON per v's redaction algorithm (new ref). */
json_t *room_event_redact(const room_version *v, const json_t *event);

/* Reference hash (SHA-256 over the redacted, unsigned, canonical event) and
 * the event ID it gives for v3+ ("$" + b64; URL-safe from v4). */
int room_event_reference_hash(const room_version *v, const json_t *event,
                              unsigned char out[32], hs_err *err);
char *room_event_compute_id(const room_version *v, const json_t *event, hs_err *err);

/* Check the content hash (hashes.sha256) of an event. 0 if it matches. */
int room_event_check_content_hash(const json_t *event, hs_err *err);

/* Finish a locally built event: add content hash, sign it as server_name with
 * key (over the redacted form), and for v1–2 set event_id "$<random>:<server_name>".
 * For v12 create events the room_id is left out, as the spec requires. */
int room_event_finish(const room_version *v, json_t *event, const char *server_name,
                      const hs_signing_key *key, hs_err *err);

#endif
