/* event_internal.h — helpers shared by the files of rooms/ that handle events:
 * identifier grammar, the redaction builder and canonical-JSON options. */
#ifndef ROOM_EVENT_INTERNAL_H
#define ROOM_EVENT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "homeserver/core/err.h"
#include "room_version.h"

#define ROOM_ID_MAX_BYTES 255

/* server_name = hostname [":" port], per the appendix grammar. */
bool room_valid_server_name(const char *s, size_t len);

/* "@" localpart ":" server_name, at most 255 bytes. The localpart may be any
 * characters but ':' (and NUL), even empty: the spec's historical user IDs
 * must still be accepted over federation. */
bool room_valid_user_id(const char *s, size_t len);

/* A room ID of room versions 1–11: "!" opaque ":" server_name. */
bool room_valid_room_id_with_domain(const char *s, size_t len);

/* A room ID of room version 12: "!" + 43 characters of URL-safe base64 (the
 * create event's reference hash). */
bool room_valid_room_id_hash(const char *s, size_t len);

/* An event ID of room versions 1–2: "$" opaque ":" server_name. */
bool room_valid_event_id_with_domain(const char *s, size_t len);

/* The part after the first ':' of a user, room or event ID, or "" if none. */
const char *room_id_domain(const char *id);

/* The string value of obj[key] when it is a string without NUL, else NULL. */
const char *room_json_str(const json_t *obj, const char *key);

/* Is (type, state_key) the create event (m.room.create, "")? */
bool room_is_create(const char *type, const char *state_key);

/* The redacted form of event per v. With share set, the result holds new
 * references to the event's own values (cheap, for hashing only, must not be
 * modified); otherwise they are deep copies. NULL on allocation failure. */
json_t *room_redact_build(const room_version *v, const json_t *event, bool share);

/* The format checks of room_event_parse (keys, types, ranges, sizes, ID
 * grammar), without computing the event ID. 0, or -1 with 400 M_BAD_JSON. */
int room_event_validate(const room_version *v, const json_t *ev, hs_err *err);

/* The first of sender, room_id, state_key, type, event_id longer than 255
 * bytes in a version that counted codepoints (before v11, as Synapse did),
 * or NULL. room_event_validate keeps such an event; the auth checks reject it. */
const char *room_event_oversized_key(const room_version *v, const json_t *ev);

/* Canonical-JSON flags for events of v: versions without strict canonical
 * JSON may carry integers beyond ±(2^53−1). */
unsigned room_canon_flags(const room_version *v);

#endif
