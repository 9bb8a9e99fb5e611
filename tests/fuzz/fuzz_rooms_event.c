/* fuzz_rooms_event.c — libFuzzer target: untrusted PDUs through the room
 * model. The first byte picks the room version, the rest is the event JSON.
 *
 * Whatever parses is redacted (redaction must be idempotent and must not
 * change the event ID), hashed, given to the auth events selection, and
 * authorised against a small room in which it also stands in as the state
 * event for its own (type, state_key) — so arbitrary content reaches the
 * power-level, join-rule and third-party-invite readers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "rooms/auth.h"

typedef struct fuzz_state {
    const room_event *fuzzed;
    const room_event *fixed[4];
} fuzz_state;

static const room_event *lookup(void *ctx, const char *type, const char *sk) {
    fuzz_state *s = ctx;
    const room_event *f = s->fuzzed;
    if (f->state_key && strcmp(f->type, type) == 0 && strcmp(f->state_key, sk) == 0) return f;
    for (int i = 0; i < 4; i++)
        if (s->fixed[i] && strcmp(s->fixed[i]->type, type) == 0 &&
            strcmp(s->fixed[i]->state_key, sk) == 0)
            return s->fixed[i];
    return NULL;
}

/* A state event of e's room, so that lookups find something to read. */
static room_event *fixed_event(const room_event *e, const char *type, const char *sk,
                               const char *content) {
    hs_err err;
    json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:i,s:i,s:{s:s},s:{},s:[],s:[]}", "type", type,
                          "sender", "@a:example.org", "state_key", sk, "content",
                          json_loads(content, 0, NULL), "depth", 1, "origin_server_ts", 1,
                          "hashes", "sha256", "x", "signatures", "prev_events", "auth_events");
    if (!(e->ver->hydra && strcmp(type, "m.room.create") == 0))
        json_object_set_new(j, "room_id", json_string(e->room_id));
    if (e->ver->event_format == ROOM_EVFMT_V1)
        json_object_set_new(j, "event_id", json_string("$fixed:example.org"));
    room_event *f = room_event_parse(e->ver, j, &err);
    json_decref(j);
    return f;
}

static void check_redaction(const room_event *e) {
    hs_err err;
    json_t *once = room_event_redact(e->ver, e->json);
    json_t *twice = room_event_redact(e->ver, once);
    if (!once || !twice || !json_equal(once, twice)) abort(); /* idempotent */
    if (e->ver->event_format != ROOM_EVFMT_V1) {
        char *id = room_event_compute_id(e->ver, once, &err);
        if (!id || strcmp(id, e->event_id) != 0) abort(); /* ID covers the redacted form */
        free(id);
    }
    json_decref(once);
    json_decref(twice);
}

static void check_auth(const room_event *e) {
    hs_err err;
    fuzz_state s = {.fuzzed = e};
    s.fixed[0] = fixed_event(e, "m.room.create", "", "{\"creator\":\"@a:example.org\"}");
    s.fixed[1] = fixed_event(e, "m.room.member", "@a:example.org", "{\"membership\":\"join\"}");
    s.fixed[2] = fixed_event(e, "m.room.power_levels", "", "{\"users\":{\"@a:example.org\":100}}");
    s.fixed[3] = fixed_event(e, "m.room.join_rules", "", "{\"join_rule\":\"public\"}");
    (void)room_auth_check(e, lookup, &s, &err);
    const room_event *auth[5] = {e, s.fixed[0], s.fixed[1], s.fixed[2], s.fixed[3]};
    size_t n = 1;
    for (int i = 0; i < 4; i++)
        if (s.fixed[i]) auth[n++] = s.fixed[i];
    (void)room_auth_check_auth_events(e, auth, n, &err);
    (void)room_user_power_level(e->ver, e->sender, lookup, &s);
    for (int i = 0; i < 4; i++) room_event_free((room_event *)s.fixed[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const room_version *all = room_versions_all();
    const room_version *v = &all[data[0] % 12];
    hs_err err;
    json_t *j = hs_json_parse((const char *)data + 1, size - 1, &err);
    if (!j) return 0;
    room_state_key keys[8];
    (void)room_auth_types_for_event(v, j, keys, 8); /* must cope with any JSON */
    unsigned char hash[32];
    (void)room_event_reference_hash(v, j, hash, &err);
    (void)room_event_check_content_hash(j, &err);
    room_event *e = room_event_parse(v, j, &err);
    json_decref(j);
    if (!e) return 0;
    check_redaction(e);
    check_auth(e);
    room_event_free(e);
    return 0;
}
