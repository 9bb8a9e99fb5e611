/* redact.c — the redaction algorithm of every room version.
 *
 * The same algorithm gives the form that is signed and hashed into event IDs,
 * so every byte matters: a difference from other servers breaks signatures.
 * Where the spec is silent (content that is not an object, a v11
 * third_party_invite that is not an object, room_id on a v12 create) we do
 * what Synapse does, since its output is what the federation signs. */
#include <string.h>

#include "event.h"
#include "event_internal.h"

/* Top-level keys every version keeps. */
static const char *const keep_always[] = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
    "signatures", "depth", "prev_events", "auth_events", "origin_server_ts", NULL,
};

/* Kept until v11 removed them from the list. */
static const char *const keep_before_v11[] = {"prev_state", "origin", "membership", NULL};

static const char *const power_levels_keys[] = {
    "ban", "events", "events_default", "kick", "redact", "state_default", "users",
    "users_default", NULL,
};

static json_t *take(json_t *v, bool share) { return share ? json_incref(v) : json_deep_copy(v); }

/* Copy src[key] into dst when present. Returns -1 on allocation failure. */
static int copy_key(json_t *dst, const json_t *src, const char *key, bool share) {
    json_t *val = json_object_get(src, key);
    if (!val) return 0;
    json_t *c = take(val, share);
    return c ? json_object_set_new(dst, key, c) : -1;
}

static int copy_keys(json_t *dst, const json_t *src, const char *const *keys, bool share) {
    for (; *keys; keys++)
        if (copy_key(dst, src, *keys, share)) return -1;
    return 0;
}

/* v11+: third_party_invite survives with only its "signed" member; a value
 * that is not an object is dropped (Synapse). */
static int keep_signed_invite(json_t *dst, const json_t *content, bool share) {
    json_t *tpi = json_object_get(content, "third_party_invite");
    if (!json_is_object(tpi)) return 0;
    json_t *kept = json_object();
    if (!kept || copy_key(kept, tpi, "signed", share)) {
        json_decref(kept);
        return -1;
    }
    return json_object_set_new(dst, "third_party_invite", kept);
}

static int redact_member(const room_version *v, json_t *dst, const json_t *c, bool share) {
    if (copy_key(dst, c, "membership", share)) return -1;
    if (v->restricted_join_redaction && copy_key(dst, c, "join_authorised_via_users_server", share))
        return -1;
    if (v->updated_redaction_rules) return keep_signed_invite(dst, c, share);
    return 0;
}

static int redact_create(const room_version *v, json_t *dst, const json_t *c, bool share) {
    if (!v->v11_redaction) return copy_key(dst, c, "creator", share);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)c, key, val) {
        json_t *copy = take(val, share);
        if (!copy || json_object_set_new(dst, key, copy)) return -1;
    }
    return 0;
}

/* The content that survives for an event of this type. */
static int redact_content(const room_version *v, const char *type, json_t *dst, const json_t *c,
                          bool share) {
    if (!type || !json_is_object(c)) return 0;
    if (strcmp(type, "m.room.member") == 0) return redact_member(v, dst, c, share);
    if (strcmp(type, "m.room.create") == 0) return redact_create(v, dst, c, share);
    if (strcmp(type, "m.room.join_rules") == 0)
        return copy_key(dst, c, "join_rule", share) ||
               (v->restricted_join && copy_key(dst, c, "allow", share));
    if (strcmp(type, "m.room.power_levels") == 0)
        return copy_keys(dst, c, power_levels_keys, share) ||
               (v->updated_redaction_rules && copy_key(dst, c, "invite", share));
    if (strcmp(type, "m.room.aliases") == 0)
        return v->special_case_aliases_auth ? copy_key(dst, c, "aliases", share) : 0;
    if (strcmp(type, "m.room.history_visibility") == 0)
        return copy_key(dst, c, "history_visibility", share);
    if (strcmp(type, "m.room.redaction") == 0)
        return v->updated_redaction_rules ? copy_key(dst, c, "redacts", share) : 0;
    return 0;
}

static int redact_top(const room_version *v, json_t *out, const json_t *event, const char *type,
                      bool share) {
    /* A v12 create event has no room_id: its room ID is derived from its
     * hash, so a stray one must not take part in it (Synapse drops it too). */
    bool drop_room_id = v->hydra && type && strcmp(type, "m.room.create") == 0;
    for (const char *const *k = keep_always; *k; k++) {
        if (strcmp(*k, "content") == 0 || (drop_room_id && strcmp(*k, "room_id") == 0)) continue;
        if (copy_key(out, event, *k, share)) return -1;
    }
    return v->v11_redaction ? 0 : copy_keys(out, event, keep_before_v11, share);
}

json_t *room_redact_build(const room_version *v, const json_t *event, bool share) {
    if (!v || !json_is_object(event)) return NULL;
    const char *type = room_json_str(event, "type");
    json_t *out = json_object();
    json_t *content = json_object();
    if (!out || !content || redact_top(v, out, event, type, share) ||
        redact_content(v, type, content, json_object_get(event, "content"), share)) {
        json_decref(out);
        json_decref(content);
        return NULL;
    }
    if (json_object_set_new(out, "content", content)) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *room_event_redact(const room_version *v, const json_t *event) {
    return room_redact_build(v, event, false);
}
