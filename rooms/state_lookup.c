/* state_lookup.c — auth-check lookups over stored state, loading lazily. */
#include "state_lookup.h"

#include <string.h>

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
    if (hit) return hit;
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
}
