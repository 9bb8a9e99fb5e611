/* event_validate.c — is this JSON a well-formed PDU of its room version?
 *
 * These are the format checks of "checks performed on receipt of a PDU",
 * step 1: an event failing them is dropped, not rejected, so each failure
 * names the exact key and rule so that a remote admin can find the bug.
 * Rules that the spec places in the authorization rules (a v12 create event
 * with a room_id, a v12 event citing its create event) are left to auth.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_internal.h"
#include "homeserver/core/json.h"

#define MAX_PREV_EVENTS 20
#define MAX_AUTH_EVENTS 10

#define bad(err, ...) hs_err_set(err, 400, "M_BAD_JSON", __VA_ARGS__)

/* ---- numbers: no floats anywhere, integers in range from v6 ------------ */

typedef struct walk {
    const room_version *v;
    char path[160];
    hs_err *err;
} walk;

static int walk_value(walk *w, const json_t *val, size_t plen);

/* Append ".key" or "[i]" to the path, truncating quietly: the path only
 * serves the error message. */
static size_t path_push(walk *w, size_t plen, const char *key, size_t idx) {
    int n = key ? snprintf(w->path + plen, sizeof w->path - plen, "%s%s", plen ? "." : "", key)
                : snprintf(w->path + plen, sizeof w->path - plen, "[%zu]", idx);
    if (n < 0) return plen;
    size_t end = plen + (size_t)n;
    return end < sizeof w->path ? end : sizeof w->path - 1;
}

static int walk_number(walk *w, const json_t *val) {
    if (json_is_real(val))
        /* Floats: forbidden by canonical JSON from v6; before v6 allowed, but
         * no two implementations write them the same way, so such an event
         * could never be hashed or signed compatibly. */
        return bad(w->err, "%s: floats are not allowed in events (room version %s)", w->path,
                   w->v->id);
    json_int_t i = json_integer_value(val);
    if (w->v->strict_canonicaljson && (i > HS_JSON_MAX_SAFE_INT || i < -HS_JSON_MAX_SAFE_INT))
        return bad(w->err, "%s: integer outside ±(2^53-1), forbidden from room version 6 (here %s)",
                   w->path, w->v->id);
    return 0;
}

static int walk_value(walk *w, const json_t *val, size_t plen) {
    w->path[plen] = '\0';
    if (json_is_number(val)) return walk_number(w, val);
    if (json_is_object(val)) {
        const char *key;
        json_t *child;
        json_object_foreach((json_t *)val, key, child) {
            if (walk_value(w, child, path_push(w, plen, key, 0))) return -1;
        }
    } else if (json_is_array(val)) {
        for (size_t i = 0; i < json_array_size(val); i++)
            if (walk_value(w, json_array_get(val, i), path_push(w, plen, NULL, i))) return -1;
    }
    return 0;
}

/* ---- single keys ------------------------------------------------------- */

/* The codepoints of a UTF-8 string: its bytes that do not continue one. */
static size_t codepoints(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* obj[key] as a string of at most max bytes without NUL; absent is allowed
 * when optional. Sets *out (NULL when absent). Where v is lenient (before
 * v11, room_event_oversized_key), max counts codepoints: such an event is
 * kept, to be rejected by the auth checks rather than dropped. */
static int get_string(const room_version *v, const json_t *obj, const char *key, size_t max,
                      bool optional, const char **out, hs_err *err) {
    json_t *s = json_object_get(obj, key);
    *out = NULL;
    if (!s) return optional ? 0 : bad(err, "Missing required key '%s'", key);
    if (!json_is_string(s)) return bad(err, "'%s' must be a string", key);
    size_t len = json_string_length(s);
    if (len > max && (v->strict_event_byte_limits || codepoints(json_string_value(s), len) > max))
        return bad(err, "'%s' is longer than 255 %s", key,
                   v->strict_event_byte_limits ? "bytes" : "codepoints");
    if (strlen(json_string_value(s)) != len) return bad(err, "'%s' contains U+0000", key);
    *out = json_string_value(s);
    return 0;
}

const char *room_event_oversized_key(const room_version *v, const json_t *ev) {
    static const char *const keys[] = {"sender", "room_id", "state_key", "type", "event_id"};
    if (v->strict_event_byte_limits) return NULL;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const json_t *s = json_object_get(ev, keys[i]);
        if (json_is_string(s) && json_string_length(s) > ROOM_ID_MAX_BYTES) return keys[i];
    }
    return NULL;
}

static int check_integer(const json_t *ev, const char *key, json_int_t min, json_int_t max,
                         hs_err *err) {
    json_t *n = json_object_get(ev, key);
    if (!n) return bad(err, "Missing required key '%s'", key);
    if (!json_is_integer(n)) return bad(err, "'%s' must be an integer", key);
    json_int_t i = json_integer_value(n);
    if (i < min || i > max) return bad(err, "'%s' is out of range", key);
    return 0;
}

/* An object whose values are all strings (hashes; one server's signatures). */
static bool string_map(const json_t *o) {
    if (!json_is_object(o)) return false;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)o, k, val) {
        if (!json_is_string(val)) return false;
    }
    return true;
}

static int check_hashes_signatures(const json_t *ev, hs_err *err) {
    json_t *h = json_object_get(ev, "hashes");
    if (!h) return bad(err, "Missing required key 'hashes'");
    if (!string_map(h)) return bad(err, "'hashes' must be an object of strings");
    if (!json_object_get(h, "sha256")) return bad(err, "'hashes' has no sha256");
    json_t *s = json_object_get(ev, "signatures");
    if (!s) return bad(err, "Missing required key 'signatures'");
    if (!json_is_object(s)) return bad(err, "'signatures' must be an object");
    const char *server;
    json_t *sigs;
    json_object_foreach(s, server, sigs) {
        if (!string_map(sigs))
            return bad(err, "signatures.%s must be an object of strings", server);
    }
    /* "unsigned" is not checked: no hash or signature covers it, so any
     * server on the way may have mangled it, and dropping the event for that
     * would let it censor events; the federation layer keeps only the
     * unsigned keys it trusts, as Synapse does. */
    return 0;
}

/* ---- identifiers --------------------------------------------------------- */

static bool valid_ref_id(const json_t *id) {
    if (!json_is_string(id)) return false;
    const char *s = json_string_value(id);
    size_t len = json_string_length(id);
    return len >= 2 && len <= ROOM_ID_MAX_BYTES && s[0] == '$' && strlen(s) == len;
}

/* v1–2 list entries are [event_id, {algorithm: hash}] pairs. */
static bool valid_ref(const room_version *v, const json_t *ref) {
    if (v->event_format != ROOM_EVFMT_V1) return valid_ref_id(ref);
    return json_is_array(ref) && json_array_size(ref) == 2 &&
           valid_ref_id(json_array_get(ref, 0)) && string_map(json_array_get(ref, 1));
}

static int check_refs(const room_version *v, const json_t *ev, const char *key, size_t max,
                      hs_err *err) {
    json_t *list = json_object_get(ev, key);
    if (!list) return bad(err, "Missing required key '%s'", key);
    if (!json_is_array(list)) return bad(err, "'%s' must be an array", key);
    if (json_array_size(list) > max)
        return bad(err, "'%s' has more than %zu entries", key, max);
    for (size_t i = 0; i < json_array_size(list); i++)
        if (!valid_ref(v, json_array_get(list, i)))
            return bad(err, "%s[%zu] must be %s", key, i,
                       v->event_format == ROOM_EVFMT_V1 ? "an [event ID, hashes] pair"
                                                        : "an event ID");
    return 0;
}

static int check_ids(const room_version *v, const json_t *ev, hs_err *err) {
    const char *s, *type, *state_key;
    if (get_string(v, ev, "type", 255, false, &type, err) ||
        get_string(v, ev, "state_key", 255, true, &state_key, err) ||
        get_string(v, ev, "sender", ROOM_ID_MAX_BYTES, false, &s, err))
        return -1;
    if (!room_valid_user_id(s, strlen(s))) return bad(err, "'sender' is not a valid user ID");
    /* A v12 create event's room ID is its own hash; whether it wrongly
     * carries one anyway is auth rule 1.2's business. */
    bool derived = v->hydra && room_is_create(type, state_key);
    if (get_string(v, ev, "room_id", ROOM_ID_MAX_BYTES, derived, &s, err)) return -1;
    if (s && !derived &&
        !(v->hydra ? room_valid_room_id_hash(s, strlen(s))
                   : room_valid_room_id_with_domain(s, strlen(s))))
        return bad(err, "'room_id' is not a valid room ID for room version %s", v->id);
    if (v->event_format != ROOM_EVFMT_V1) {
        if (json_object_get(ev, "event_id"))
            return bad(err, "Room version %s events must not carry 'event_id'", v->id);
        return 0;
    }
    if (get_string(v, ev, "event_id", ROOM_ID_MAX_BYTES, false, &s, err)) return -1;
    if (!room_valid_event_id_with_domain(s, strlen(s)))
        return bad(err, "'event_id' is not a valid event ID");
    return 0;
}

/* ---- the whole event ------------------------------------------------------ */

static int check_size(const room_version *v, const json_t *ev, hs_err *err) {
    size_t len = 0;
    char *canon = hs_json_canonical_ex(ev, NULL, room_canon_flags(v), &len, err);
    if (!canon) return -1;
    free(canon);
    /* 413 M_TOO_LARGE, as Synapse's EventSizeError answers a client. */
    if (len > ROOM_EVENT_MAX_BYTES)
        return hs_err_set(err, 413, "M_TOO_LARGE",
                          "Event is %zu bytes of canonical JSON, over the 65536 limit", len);
    return 0;
}

int room_event_validate(const room_version *v, const json_t *ev, hs_err *err) {
    if (!json_is_object(ev)) return bad(err, "An event must be a JSON object");
    walk w = {.v = v, .err = err};
    if (walk_value(&w, ev, 0)) return -1;
    if (check_ids(v, ev, err)) return -1;
    if (!json_is_object(json_object_get(ev, "content")))
        return bad(err, "'content' must be an object");
    /* Depth: below 2^63-1 in the old formats, 2^53-1 once canonical JSON is
     * strict; jansson's json_int_t bounds the former. */
    json_int_t max_depth = v->strict_canonicaljson ? HS_JSON_MAX_SAFE_INT : INT64_MAX;
    if (check_integer(ev, "depth", 0, max_depth, err) ||
        check_integer(ev, "origin_server_ts", INT64_MIN, INT64_MAX, err) ||
        check_hashes_signatures(ev, err) ||
        check_refs(v, ev, "prev_events", MAX_PREV_EVENTS, err) ||
        check_refs(v, ev, "auth_events", MAX_AUTH_EVENTS, err))
        return -1;
    return check_size(v, ev, err);
}
