/* rooms_hash.c — the room model's hashing, for differential tests.
 *
 * Reads JSON lines {"version": "10", "event": {...}} on stdin and writes one
 * JSON line per input with what rooms/ computes for the event:
 *   redacted     canonical JSON of room_event_redact
 *   ref          reference hash, unpadded standard base64
 *   event_id     the event ID room_event_parse arrives at (after validation)
 *   room_id      the room ID it arrives at (derived for v12 create events)
 *   content_hash_ok  whether hashes.sha256 matches (room_event_check_content_hash)
 *   parse_error  why room_event_parse refused the event, if it did
 * A line that is not such an object gives {"error": "..."}.
 * tests/diff/rooms_diff.py drives it against Synapse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/json.h"
#include "rooms/event.h"

static void put_string(json_t *out, const char *key, const char *val) {
    if (val) json_object_set_new(out, key, json_string(val));
}

static void add_redacted(json_t *out, const room_version *v, json_t *event) {
    hs_err err = {0};
    json_t *red = room_event_redact(v, event);
    char *canon = red ? hs_json_canonical_ex(red, NULL, HS_JSON_CANON_ANY_INT, NULL, &err) : NULL;
    put_string(out, canon ? "redacted" : "redact_error", canon ? canon : err.msg);
    free(canon);
    json_decref(red);
    unsigned char hash[32];
    if (room_event_reference_hash(v, event, hash, &err) == 0) {
        char *b64 = hs_b64_encode(hash, sizeof hash, false);
        put_string(out, "ref", b64);
        free(b64);
    } else {
        put_string(out, "ref_error", err.msg);
    }
}

static void add_parsed(json_t *out, const room_version *v, json_t *event) {
    hs_err err = {0};
    room_event *e = room_event_parse(v, event, &err);
    if (!e) {
        put_string(out, "parse_error", err.msg);
        return;
    }
    put_string(out, "event_id", e->event_id);
    put_string(out, "room_id", e->room_id);
    room_event_free(e);
    json_object_set_new(out, "content_hash_ok",
                        json_boolean(room_event_check_content_hash(event, &err) == 0));
}

static json_t *process(const char *line, size_t len) {
    hs_err err = {0};
    json_t *in = hs_json_parse(line, len, &err);
    json_t *out = json_object();
    const room_version *v = room_version_get(json_string_value(json_object_get(in, "version")));
    json_t *event = json_object_get(in, "event");
    if (!in || !v || !json_is_object(event)) {
        put_string(out, "error", in ? "need a known version and an event object" : err.msg);
    } else {
        add_redacted(out, v, event);
        add_parsed(out, v, event);
    }
    json_decref(in);
    return out;
}

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n == 0) continue;
        json_t *out = process(line, (size_t)n);
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        if (!s) return 1;
        puts(s);
        free(s);
    }
    free(line);
    return 0;
}
