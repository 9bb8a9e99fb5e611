/* local_event.c — events this server makes: build, authorise, persist.
 *
 * The room's row is locked for the transaction, so two local events of one
 * room are built one after the other: each sees the other's extremity, and
 * the state an event is checked against is the state it will be stored on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "policy_server.h"
#include "rooms.h"
#include "state_lookup.h"

/* A reference to an event as v1/v2 write it: [id, {"sha256": hash}]. */
static json_t *event_ref(db_conn *c, const room_version *v, const char *id, hs_err *err) {
    if (v->event_format != ROOM_EVFMT_V1) return json_string(id);
    room_event *ev = room_store_get_event(c, id, err);
    unsigned char h[32];
    if (!ev || room_event_reference_hash(v, ev->json, h, err) < 0) {
        room_event_free(ev);
        return NULL;
    }
    room_event_free(ev);
    char *b64 = hs_b64_encode(h, sizeof h, false);
    json_t *ref = json_pack("[s, {s:s}]", id, "sha256", b64);
    free(b64);
    return ref;
}

/* prev_events and depth from the forward extremities (the head read with the
 * room's lock, when it is known); the state group before the new event (the
 * current state when all extremities are cited). */
static int fill_prev(db_conn *c, const room_version *v, const char *room_id, json_t *ev,
                     long long current, const room_head *head, long long *before_group,
                     room_state_map **before, hs_err *err) {
    char **ext = NULL;
    size_t n = 0;
    long long depth = 0;
    if (head && head->known) {
        ext = malloc(sizeof *ext);
        if (!ext || !(ext[0] = strdup(head->event_id)))
            return free(ext), hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        n = 1;
        depth = head->depth;
    } else if (room_store_extremities(c, room_id, &ext, &n, &depth, err) < 0) {
        return -1;
    }
    size_t use = n < ROOM_MAX_PREV_FOR_NEW ? n : ROOM_MAX_PREV_FOR_NEW;
    json_t *prev = json_array();
    int rc = 0;
    for (size_t i = 0; i < use && rc == 0; i++) {
        json_t *ref = event_ref(c, v, ext[i], err);
        rc = ref ? json_array_append_new(prev, ref) : -1;
    }
    json_object_set_new(ev, "prev_events", prev);
    json_object_set_new(ev, "depth", json_integer(depth + 1 < HS_JSON_MAX_SAFE_INT ? depth + 1
                                                                                : HS_JSON_MAX_SAFE_INT));
    *before_group = use == n ? current : 0;
    if (rc == 0 && use < n) {
        /* Too many extremities to cite: the state before is theirs resolved. */
        *before = room_state_map_new();
        rc = room_store_state_after_events(c, v, (const char *const *)ext, use, *before, err);
    }
    room_store_free_ids(ext, n);
    return rc;
}

/* auth_events: the auth events selection, taken from the current state. */
static int fill_auth(db_conn *c, const room_version *v, json_t *ev, room_lookup *l, hs_err *err) {
    /* One query for every event the auth events and the auth check need. */
    if (room_lookup_prefetch(l, v, ev) < 0) return *err = l->err, -1;
    room_state_key keys[16];
    size_t n = room_auth_types_for_event(v, ev, keys, 16);
    json_t *auth = json_array();
    json_object_set_new(ev, "auth_events", auth);
    for (size_t i = 0; i < n; i++) {
        const room_event *a = room_lookup_get(l, keys[i].type, keys[i].state_key);
        if (l->failed) return *err = l->err, -1;
        if (!a) continue;
        json_t *ref = event_ref(c, v, a->event_id, err);
        if (!ref) return -1;
        json_array_append_new(auth, ref);
    }
    return 0;
}

static json_t *skeleton(const room_version *v, const char *room_id, const json_t *proto,
                        bool create) {
    json_t *ev = json_deep_copy(proto);
    json_object_del(ev, "event_id");
    json_object_del(ev, "unsigned");
    if (!json_is_integer(json_object_get(ev, "origin_server_ts")))
        json_object_set_new(ev, "origin_server_ts", json_integer(hs_now_ms()));
    if (!(create && v->hydra)) json_object_set_new(ev, "room_id", json_string(room_id));
    return ev;
}

/* The auth rules on a built event: against the state it is built on, for a
 * plain linear room the current state (whose auth events fill_auth has just
 * loaded into l), for a capped fork the resolved state (before). */
static int check_built(db_conn *c, const room_event *ev, room_state_map *before, room_lookup *l,
                       hs_err *err) {
    room_lookup fork = {.c = c, .room_id = ev->room_id, .map = before};
    room_lookup *on = before ? &fork : l;
    int ok = room_auth_check(ev, room_lookup_get, on, err);
    if (on->failed) *err = on->err, ok = -1;
    room_lookup_clear(&fork);
    return ok;
}

/* Signed, hashed and parsed. What older rooms keep from other servers
 * (event.h, an ID, type or state key over 255 bytes), we never make. */
static room_event *finish(const room_version *v, json_t *j, const char *server_name,
                          const hs_signing_key *key, hs_err *err) {
    room_event *ev = NULL;
    if (room_event_finish(v, j, server_name, key, err) < 0 || !(ev = room_event_parse(v, j, err)))
        return NULL;
    if (ev->oversized) {
        hs_err_set(err, 400, "M_BAD_JSON", "'%s' is longer than 255 bytes", ev->oversized);
        room_event_free(ev);
        return NULL;
    }
    return ev;
}

/* A non-create event built on the room's state as read under its lock
 * (current group, head), signed and checked; j is its JSON (a Policy
 * Server's signature goes there), *before the resolved state when it cannot
 * cite every extremity. l may hold auth events read ahead. */
static room_event *build_locked(db_conn *c, const room_version *v, const char *room_id,
                                json_t *j, const char *server_name, const hs_signing_key *key,
                                long long current, const room_head *head, room_lookup *l,
                                room_state_map **before, long long *before_group, hs_err *err) {
    l->stamped = true;
    l->state_stamp = head->state_stamp;
    room_event *ev = NULL;
    if (fill_prev(c, v, room_id, j, current, head, before_group, before, err) < 0 ||
        fill_auth(c, v, j, l, err) < 0 || !(ev = finish(v, j, server_name, key, err)))
        return NULL;
    if (check_built(c, ev, *before, l, err) < 0) room_event_free(ev), ev = NULL;
    return ev;
}

/* The create event: no lock (there is no room yet), nothing before it. A
 * v12 room ID is the create event's hash: the same creator and content in
 * the same millisecond (two createRoom calls at once) would make the same
 * room. Claim the ID first and, as Synapse does, step the timestamp back
 * until it is new. */
static room_event *build_create(db_conn *c, const room_version *v, json_t *j,
                                const char *server_name, const hs_signing_key *key,
                                room_lookup *l, hs_err *err) {
    json_object_set_new(j, "prev_events", json_array());
    json_object_set_new(j, "auth_events", json_array());
    json_object_set_new(j, "depth", json_integer(1));
    room_event *ev = finish(v, j, server_name, key, err);
    if (!ev) return NULL;
    for (int tries = 0; v->hydra; tries++) {
        int claimed = room_store_claim_room(c, ev, err);
        if (claimed > 0) break;
        room_event_free(ev);
        if (claimed < 0) return NULL;
        if (tries == 100)
            return hs_err_set(err, 500, "M_UNKNOWN", "could not find a free room ID"), NULL;
        json_int_t ts = json_integer_value(json_object_get(j, "origin_server_ts"));
        json_object_set_new(j, "origin_server_ts", json_integer(ts - 1));
        json_object_del(j, "signatures");
        json_object_del(j, "hashes");
        if (!(ev = finish(v, j, server_name, key, err))) return NULL;
    }
    l->room_id = ev->room_id;
    if (check_built(c, ev, NULL, l, err) < 0) room_event_free(ev), ev = NULL;
    return ev;
}

room_event *room_send_local(db_conn *c, const room_version *v, const char *room_id,
                            const json_t *proto, const char *server_name,
                            const hs_signing_key *key, long long stream_ordering, hs_err *err) {
    const char *type = json_string_value(json_object_get(proto, "type"));
    bool create = type && !strcmp(type, "m.room.create");
    if (create && !v) return hs_err_set(err, 500, "M_UNKNOWN", "a new room needs a version"), NULL;
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    if (!create) {
        /* The lock (with the room's head: its one extremity, usually, and
         * whether it has a Policy Server) and the auth events read under
         * it, in one round trip (the version is
         * needed to know which auth events: this process has seen it before,
         * usually). */
        const room_version *known = v ? v : room_store_known_version(room_id);
        room_store_prefetch_head(c, room_id);
        /* Not when this process keeps the room's auth events: they are
         * still good, usually (the stamp read with the lock tells). */
        if (known && !room_current_cache_has(room_id)) {
            json_t *ahead = skeleton(known, room_id, proto, false);
            room_lookup_prefetch_ahead(&l, known, ahead);
            json_decref(ahead);
        }
    }
    room_head head = {0};
    long long current =
        create ? 0 : room_store_lock_room_head(c, room_id, v ? NULL : &v, &head, err);
    if (current < 0) return NULL;
    json_t *j = skeleton(v, room_id, proto, create);
    room_state_map *before = NULL;
    long long before_group = 0;
    room_event *ev = create ? build_create(c, v, j, server_name, key, &l, err)
                            : build_locked(c, v, room_id, j, server_name, key, current, &head, &l,
                                           &before, &before_group, err);
    int ok = ev ? 0 : -1;
    /* A room with a Policy Server: its signature before the event is stored
     * and sent, or no event (spec: the client gets the refusal). Asked here,
     * under the room lock, because the signature covers prev_events and
     * auth_events, which are final only now; it changes neither the hashes
     * nor the event ID, so the event is only parsed again. */
    if (ok == 0 && !create && head.has_policy) {
        int signed_ = room_policy_sign_local(c, v, j, server_name, err);
        room_event *again = signed_ > 0 ? room_event_parse(v, j, err) : NULL;
        if (signed_ < 0 || (signed_ > 0 && !again)) {
            ok = -1;
        } else if (again) {
            room_event_free(ev);
            ev = again;
        }
    }
    room_persist_item it = {ev, false, false, NULL, before, before_group, stream_ordering,
                            .extends_current = !create && current > 0 && before_group == current,
                            .known_new = !create};
    if (ok < 0 || room_store_persist(c, &it, 1, err) < 0) {
        room_event_free(ev);
        ev = NULL;
    } else {
        ev->stream_ordering = stream_ordering;
    }
    room_lookup_clear(&l);
    room_state_map_free(before);
    json_decref(j);
    return ev;
}

int room_send_local_many(db_conn *c, const char *const *room_ids, const json_t *const *protos,
                         size_t n, const char *server_name, const hs_signing_key *key,
                         const long long *stream_orderings, room_event **out, hs_err *err) {
    long long *current = calloc(n, sizeof *current);
    const room_version **v = calloc(n, sizeof *v);
    room_head *heads = calloc(n, sizeof *heads);
    room_persist_item *items = calloc(n, sizeof *items);
    int rc = -1;
    for (size_t i = 0; i < n; i++) out[i] = NULL;
    if (!current || !v || !heads || !items) {
        hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        goto done;
    }
    if (room_store_lock_room_heads(c, room_ids, n, current, v, heads, err) < 0) goto done;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        /* Only the plain case: a known room with one extremity and no
         * Policy Server; the caller sends the others one by one. */
        if (current[i] <= 0 || !heads[i].known || heads[i].has_policy) continue;
        room_lookup l = {.c = c, .room_id = room_ids[i], .current = true};
        json_t *j = skeleton(v[i], room_ids[i], protos[i], false);
        room_state_map *before = NULL;
        long long before_group = 0;
        hs_err refused = {0};
        out[i] = build_locked(c, v[i], room_ids[i], j, server_name, key, current[i], &heads[i],
                              &l, &before, &before_group, &refused);
        room_lookup_clear(&l);
        room_state_map_free(before); /* none: the head is the one extremity */
        json_decref(j);
        /* A lookup that failed may have failed the transaction. */
        if (!out[i] && refused.status >= 500) {
            *err = refused;
            goto done;
        }
        if (!out[i]) continue;
        out[i]->stream_ordering = stream_orderings[i];
        items[m++] = (room_persist_item){out[i], .state_before_group = current[i],
                                         .stream_ordering = stream_orderings[i],
                                         .extends_current = true, .known_new = true};
    }
    rc = room_store_persist(c, items, m, err);
done:
    if (rc < 0)
        for (size_t i = 0; i < n; i++) room_event_free(out[i]), out[i] = NULL;
    free(current);
    free(v);
    free(heads);
    free(items);
    return rc;
}

json_t *room_event_template(db_conn *c, const room_version *v, const char *room_id,
                            const json_t *proto, hs_err *err) {
    if (!v && !(v = room_store_room_version(c, room_id, err))) return NULL;
    json_t *j = skeleton(v, room_id, proto, false);
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    room_state_map *before = NULL;
    long long before_group = 0;
    if (fill_prev(c, v, room_id, j, 0, NULL, &before_group, &before, err) < 0 ||
        fill_auth(c, v, j, &l, err) < 0) {
        json_decref(j);
        j = NULL;
    }
    room_lookup_clear(&l);
    room_state_map_free(before);
    return j;
}
