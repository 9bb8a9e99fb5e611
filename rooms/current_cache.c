/* current_cache.c — the current-state events local sends are authorised
 * with, kept per room between sends.
 *
 * Every message of a room reads the same few events (create, power levels,
 * join rules, the sender's membership) from current_state; this keeps what a
 * room_lookup loaded, keyed by the room's state stamp (sql/025), which the
 * send reads with the room's lock: an equal stamp means the same current
 * state, in this process or any other. A direct-mapped table: a collision
 * just forgets the other room. Copies go in and out (deep copies of the
 * JSON), so no event is shared between threads. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/str_hash.h"
#include "state_lookup.h"

#define SLOTS 256
#define KEYS 16

typedef struct entry {
    char *type, *state_key;
    room_event *ev; /* NULL: nothing at this key */
} entry;

typedef struct slot {
    char *room_id;
    long long stamp;
    entry e[KEYS];
    size_t n;
} slot;

static slot table[SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static slot *slot_of(const char *room_id) { return &table[hs_str_hash(room_id) % SLOTS]; }

static room_event *copy_event(const room_event *ev) {
    json_t *j = json_deep_copy(ev->json);
    hs_err ignored = {0};
    room_event *c = j ? room_event_parse_stored(ev->ver, j, ev->event_id, &ignored) : NULL;
    json_decref(j);
    if (c) c->rejected = ev->rejected;
    return c;
}

static void slot_clear(slot *s) {
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].type);
        free(s->e[i].state_key);
        room_event_free(s->e[i].ev);
    }
    s->n = 0;
    free(s->room_id);
    s->room_id = NULL;
}

bool room_current_cache_has(const char *room_id) {
    pthread_mutex_lock(&mu);
    slot *s = slot_of(room_id);
    bool has = s->room_id && !strcmp(s->room_id, room_id);
    pthread_mutex_unlock(&mu);
    return has;
}

static entry *find(slot *s, const char *room_id, long long stamp, const char *type,
                   const char *state_key) {
    if (!s->room_id || strcmp(s->room_id, room_id) != 0 || s->stamp != stamp) return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].type, type) && !strcmp(s->e[i].state_key, state_key)) return &s->e[i];
    return NULL;
}

bool room_current_cache_get(const char *room_id, long long stamp, const char *type,
                            const char *state_key, room_event **out) {
    *out = NULL;
    pthread_mutex_lock(&mu);
    entry *e = find(slot_of(room_id), room_id, stamp, type, state_key);
    bool known = e && (!e->ev || (*out = copy_event(e->ev)));
    pthread_mutex_unlock(&mu);
    return known;
}

void room_current_cache_put(const char *room_id, long long stamp, const char *type,
                            const char *state_key, const room_event *ev) {
    entry fresh = {strdup(type), strdup(state_key), ev ? copy_event(ev) : NULL};
    if (!fresh.type || !fresh.state_key || (ev && !fresh.ev)) {
        free(fresh.type), free(fresh.state_key), room_event_free(fresh.ev);
        return;
    }
    slot old = {0};
    pthread_mutex_lock(&mu);
    slot *s = slot_of(room_id);
    if (find(s, room_id, stamp, type, state_key)) {
        pthread_mutex_unlock(&mu);
        free(fresh.type), free(fresh.state_key), room_event_free(fresh.ev);
        return;
    }
    /* Another room or another state, or full (a room of many senders):
     * start again with this entry. */
    if (!s->room_id || strcmp(s->room_id, room_id) != 0 || s->stamp != stamp || s->n == KEYS) {
        char *id = strdup(room_id);
        if (!id) {
            pthread_mutex_unlock(&mu);
            free(fresh.type), free(fresh.state_key), room_event_free(fresh.ev);
            return;
        }
        old = *s;
        memset(s, 0, sizeof *s);
        s->room_id = id;
        s->stamp = stamp;
    }
    s->e[s->n++] = fresh;
    pthread_mutex_unlock(&mu);
    slot_clear(&old);
}
