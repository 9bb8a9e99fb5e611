/* state_lookup.c — auth-check lookups over stored state, loading lazily. */
#include "state_lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_internal.h"

static const room_event *remember(room_lookup *l, room_event *ev) {
    if (l->n_loaded == sizeof l->loaded / sizeof l->loaded[0]) {
        room_event_free(ev); /* the auth rules never ask for this many */
        return NULL;
    }
    l->loaded[l->n_loaded++] = ev;
    return ev;
}

static const room_event *cached(room_lookup *l, const char *type, const char *sk) {
    for (size_t i = 0; i < l->n_loaded; i++)
        if (!strcmp(l->loaded[i]->type, type) && l->loaded[i]->state_key &&
            !strcmp(l->loaded[i]->state_key, sk))
            return l->loaded[i];
    return NULL;
}

static bool known_absent(const room_lookup *l, const char *type, const char *sk) {
    for (size_t i = 0; i < l->n_absent; i++)
        if (!strcmp(l->absent[i][0], type) && !strcmp(l->absent[i][1], sk)) return true;
    return false;
}

/* The keys room_lookup_prefetch asks for: ev's auth events selection and
 * the create event, less those already loaded or known to be absent. */
static size_t wanted_keys(room_lookup *l, const room_version *v, const json_t *ev,
                          const char *types[17], const char *sks[17]) {
    room_state_key keys[17];
    size_t n = room_auth_types_for_event(v, ev, keys, 16);
    bool has_create = false;
    for (size_t i = 0; i < n; i++) has_create |= room_is_create(keys[i].type, keys[i].state_key);
    if (!has_create) keys[n++] = (room_state_key){"m.room.create", ""};
    size_t want = 0;
    for (size_t i = 0; i < n; i++)
        if (keys[i].state_key && !cached(l, keys[i].type, keys[i].state_key) &&
            !known_absent(l, keys[i].type, keys[i].state_key))
            types[want] = keys[i].type, sks[want++] = keys[i].state_key;
    return want;
}

void room_lookup_prefetch_ahead(room_lookup *l, const room_version *v, const json_t *ev) {
    const char *types[17], *sks[17];
    size_t want = wanted_keys(l, v, ev, types, sks);
    room_store_current_events_prefetch(l->c, l->room_id, types, sks, want);
}

static void note_absent(room_lookup *l, const char *type, const char *sk) {
    if (l->n_absent == sizeof l->absent / sizeof l->absent[0]) return;
    l->absent[l->n_absent][0] = strdup(type);
    l->absent[l->n_absent][1] = strdup(sk);
    if (l->absent[l->n_absent][0] && l->absent[l->n_absent][1]) l->n_absent++;
    else free(l->absent[l->n_absent][0]), free(l->absent[l->n_absent][1]);
}

int room_lookup_prefetch(room_lookup *l, const room_version *v, const json_t *ev) {
    const char *types[17], *sks[17];
    room_event *got[17];
    size_t want = wanted_keys(l, v, ev, types, sks);
    /* What the room's current state at this stamp is known to hold. */
    size_t ask = 0;
    for (size_t i = 0; i < want; i++) {
        room_event *hit;
        if (l->stamped && room_current_cache_get(l->room_id, l->state_stamp, types[i], sks[i], &hit)) {
            if (hit) remember(l, hit);
            else note_absent(l, types[i], sks[i]);
        } else {
            types[ask] = types[i], sks[ask++] = sks[i];
        }
    }
    if (room_store_current_events(l->c, l->room_id, types, sks, ask, got, &l->err) < 0)
        return l->failed = true, -1;
    for (size_t i = 0; i < ask; i++) {
        if (l->stamped) room_current_cache_put(l->room_id, l->state_stamp, types[i], sks[i], got[i]);
        if (got[i]) remember(l, got[i]);
        else note_absent(l, types[i], sks[i]);
    }
    return 0;
}

const room_event *room_lookup_get(void *ctx, const char *type, const char *sk) {
    room_lookup *l = ctx;
    if (l->set) {
        for (size_t i = 0; i < l->n_set; i++)
            if (!strcmp(l->set[i]->type, type) && l->set[i]->state_key &&
                !strcmp(l->set[i]->state_key, sk))
                return l->set[i];
        if (strcmp(type, "m.room.create") != 0 || !sk || *sk) return NULL;
        /* v12: the create event is not among the auth events but named by the room ID. */
    }
    const room_event *hit = cached(l, type, sk);
    if (hit || known_absent(l, type, sk)) return hit;
    hs_err err = {0};
    if (!l->map && l->current) { /* the event with its current-state row, in one query */
        room_event *ev = room_store_current_event(l->c, l->room_id, type, sk, &err);
        if (!ev && err.status != 404) l->failed = true, l->err = err;
        return ev ? remember(l, ev) : NULL;
    }
    char buf[512];
    const char *id = NULL;
    if (l->map) id = room_state_map_get(l->map, type, sk);
    else if (l->room_id && !strcmp(type, "m.room.create") && l->room_id[0] == '!') {
        snprintf(buf, sizeof buf, "$%s", l->room_id + 1);
        id = buf;
    }
    if (!id) return NULL;
    room_event *ev = room_store_get_event(l->c, id, &err);
    if (!ev) {
        if (err.status != 404) l->failed = true, l->err = err;
        return NULL;
    }
    return remember(l, ev);
}

void room_lookup_clear(room_lookup *l) {
    for (size_t i = 0; i < l->n_loaded; i++) room_event_free(l->loaded[i]);
    l->n_loaded = 0;
    for (size_t i = 0; i < l->n_absent; i++) free(l->absent[i][0]), free(l->absent[i][1]);
    l->n_absent = 0;
}
