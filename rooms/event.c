/* event.c — turning validated PDU JSON into a room_event.
 *
 * The struct only points into the JSON it holds a reference to, so a parsed
 * event costs one allocation for the struct, two for the ID lists and one
 * for the event ID. */
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "event_internal.h"

/* The event IDs of prev_events / auth_events; v1–2 entries are pairs. */
static const char **collect_ids(const room_version *v, const json_t *list, size_t *n) {
    *n = json_array_size(list);
    const char **ids = calloc(*n ? *n : 1, sizeof *ids);
    if (!ids) return NULL;
    for (size_t i = 0; i < *n; i++) {
        json_t *ref = json_array_get(list, i);
        if (v->event_format == ROOM_EVFMT_V1) ref = json_array_get(ref, 0);
        ids[i] = json_string_value(ref);
    }
    return ids;
}

static char *prefixed_copy(char sigil, const char *rest) {
    size_t len = strlen(rest);
    char *s = malloc(len + 2);
    if (!s) return NULL;
    s[0] = sigil;
    memcpy(s + 1, rest, len + 1);
    return s;
}

static int fill_ids(room_event *e, const char *known_id, hs_err *err) {
    const room_version *v = e->ver;
    if (known_id)
        e->event_id = strdup(known_id);
    else if (v->event_format == ROOM_EVFMT_V1)
        e->event_id = strdup(room_json_str(e->json, "event_id"));
    else if (!(e->event_id = room_event_compute_id(v, e->json, err)))
        return -1;
    if (!e->event_id) return hs_err_set(err, 500, "M_UNKNOWN", "Out of memory");
    if (v->hydra && room_is_create(e->type, e->state_key)) {
        /* The room ID is the create event's ID with the "!" sigil. */
        if (!(e->owned_room_id = prefixed_copy('!', e->event_id + 1)))
            return hs_err_set(err, 500, "M_UNKNOWN", "Out of memory");
        e->room_id = e->owned_room_id;
    } else {
        e->room_id = room_json_str(e->json, "room_id");
    }
    return 0;
}

static void fill_fields(room_event *e) {
    json_t *j = e->json;
    e->type = room_json_str(j, "type");
    e->sender = room_json_str(j, "sender");
    e->state_key = room_json_str(j, "state_key");
    e->content = json_object_get(j, "content");
    e->depth = json_integer_value(json_object_get(j, "depth"));
    e->origin_server_ts = json_integer_value(json_object_get(j, "origin_server_ts"));
    if (strcmp(e->type, "m.room.member") == 0)
        e->membership = room_json_str(e->content, "membership");
    if (strcmp(e->type, "m.room.redaction") == 0)
        e->redacts = room_json_str(e->ver->updated_redaction_rules ? e->content : j, "redacts");
}

static room_event *build(const room_version *v, json_t *json, const char *known_id, hs_err *err) {
    if (!v) {
        hs_err_set(err, 400, "M_UNSUPPORTED_ROOM_VERSION", "Unknown room version");
        return NULL;
    }
    if (!known_id && room_event_validate(v, json, err)) return NULL;
    room_event *e = calloc(1, sizeof *e);
    if (!e) {
        hs_err_set(err, 500, "M_UNKNOWN", "Out of memory");
        return NULL;
    }
    e->json = json_incref(json);
    e->ver = v;
    fill_fields(e);
    e->oversized = room_event_oversized_key(v, json);
    e->prev_events = collect_ids(v, json_object_get(json, "prev_events"), &e->n_prev);
    e->auth_events = collect_ids(v, json_object_get(json, "auth_events"), &e->n_auth);
    if (!e->prev_events || !e->auth_events) {
        hs_err_set(err, 500, "M_UNKNOWN", "Out of memory");
        room_event_free(e);
        return NULL;
    }
    if (fill_ids(e, known_id, err)) {
        room_event_free(e);
        return NULL;
    }
    return e;
}

room_event *room_event_parse(const room_version *v, json_t *json, hs_err *err) {
    return build(v, json, NULL, err);
}

room_event *room_event_parse_stored(const room_version *v, json_t *json, const char *event_id,
                                    hs_err *err) {
    return build(v, json, event_id, err);
}

void room_event_free(room_event *e) {
    if (!e) return;
    free(e->prev_events);
    free(e->auth_events);
    free(e->event_id);
    free(e->owned_room_id);
    json_decref(e->json);
    free(e);
}
