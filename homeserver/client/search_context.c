/* search_context.c — what POST /search adds around its hits: event context
 * (as /context gives it), historic sender profiles, and rooms' state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events_read.h"
#include "homeserver/db/streams.h"
#include "rooms/rooms.h"
#include "search.h"

static void add_sender(json_t *senders, const json_t *ev) {
    const char *s = json_string_value(json_object_get(ev, "sender"));
    if (s) json_object_set_new(senders, s, json_true());
}

/* profile_info: each sender's m.room.member content in the state after
 * last_id (the latest event shown), as Synapse answers. */
static json_t *profiles(db_conn *c, const char *last_id, json_t *senders, hs_err *err) {
    room_state_map *m = room_state_map_new();
    json_t *out = NULL, *events = json_array();
    if (room_store_state_at(c, last_id, true, m, err) == 0) {
        size_t n = 0;
        const char **ids = calloc(json_object_size(senders) + 1, sizeof *ids);
        const char *user;
        json_t *v;
        json_object_foreach(senders, user, v) {
            const char *id = room_state_map_get(m, "m.room.member", user);
            if (id) ids[n++] = id;
        }
        if (client_events_by_ids(c, ids, n, true, events, err) == 0) {
            out = json_object();
            size_t i;
            json_array_foreach(events, i, v) {
                json_t *content = json_object_get(v, "content"), *p = json_object();
                const char *keys[] = {"displayname", "avatar_url"};
                for (int k = 0; k < 2; k++)
                    if (json_is_string(json_object_get(content, keys[k])))
                        json_object_set(p, keys[k], json_object_get(content, keys[k]));
                json_object_set_new(out, json_string_value(json_object_get(v, "state_key")), p);
            }
        }
        free(ids);
    }
    json_decref(events);
    room_state_map_free(m);
    return out;
}

json_t *search_context(db_conn *c, const char *viewer, const search_req *s,
                       const search_hit *h, hs_err *err) {
    const char *room = json_string_value(json_object_get(h->event, "room_id"));
    json_t *before = json_array(), *after = json_array(), *out = NULL;
    bool more;
    long long e1 = h->stream, e2 = h->stream;
    if ((s->before == 0 || client_room_events_for(c, viewer, s->device, room, 0, h->stream - 1,
                                                  (int)s->before, true, true, before, &more, &e1,
                                                  err) == 0) &&
        (s->after == 0 || client_room_events_for(c, viewer, s->device, room, h->stream,
                                                 db_stream_current(DB_STREAM_EVENTS), (int)s->after,
                                                 false, true, after, &more, &e2, err) == 0)) {
        /* Newest first before the hit, as /context lists them. */
        json_t *rev = json_array();
        for (size_t i = json_array_size(before); i > 0; i--)
            json_array_append(rev, json_array_get(before, i - 1));
        char start[32], end[32];
        snprintf(start, sizeof start, "t%lld", e1 - 1);
        snprintf(end, sizeof end, "t%lld", e2);
        out = json_pack("{s:o, s:O, s:s, s:s}", "events_before", rev, "events_after", after,
                        "start", start, "end", end);
    }
    if (out && s->profile) {
        json_t *senders = json_object(), *ev;
        size_t i;
        json_array_foreach(before, i, ev) add_sender(senders, ev);
        json_array_foreach(after, i, ev) add_sender(senders, ev);
        add_sender(senders, h->event);
        json_t *last = json_array_size(after) ? json_array_get(after, json_array_size(after) - 1)
                                              : h->event;
        json_t *p = profiles(c, json_string_value(json_object_get(last, "event_id")), senders, err);
        json_decref(senders);
        if (p) json_object_set_new(out, "profile_info", p);
        else json_decref(out), out = NULL;
    }
    json_decref(before);
    json_decref(after);
    return out;
}

json_t *search_rooms_state(db_conn *c, const search_hit *hits, size_t n, hs_err *err) {
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *room = json_string_value(json_object_get(hits[i].event, "room_id"));
        if (!room || json_object_get(out, room)) continue;
        room_state_map *m = room_state_map_new();
        json_t *events = json_array();
        int rc = room_store_current_state(c, room, m, err);
        if (rc == 0) {
            size_t k = 0, it = 0;
            const char **ids = calloc(room_state_map_count(m) + 1, sizeof *ids);
            const char *id;
            while (room_state_map_next(m, &it, NULL, NULL, &id)) ids[k++] = id;
            rc = client_events_by_ids(c, ids, k, true, events, err);
            free(ids);
        }
        room_state_map_free(m);
        if (rc < 0) {
            json_decref(events);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, room, events);
    }
    return out;
}
