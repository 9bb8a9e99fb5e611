/* current_cache.c — the current-state events local sends are authorised
 * with, kept per room between sends.
 *
 * Every message of a room reads the same few events (create, power levels,
 * join rules, the sender's membership) from current_state; this keeps what a
 * room_lookup loaded, keyed by the room's state stamp (sql/025), which the
 * send reads with the room's lock: an equal stamp means the same current
 * state, in this process or any other. A set-associative table (a room's
 * hash picks a set of WAYS slots; a new room takes the one used longest
 * ago), so a few busy rooms that share a set do not keep evicting each
 * other. Copies go in and out, but they share the event's JSON: a stored
 * event is never modified, and jansson counts references atomically, so
 * only the small room_event around it is per thread (a deep copy of each
 * auth event for each message cost about 8% of a send). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/str_hash.h"
#include "state_lookup.h"

#define SETS 256
#define WAYS 4
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
    unsigned long used; /* the tick of its last use: the oldest goes first */
} slot;

static slot table[SETS][WAYS];
static unsigned long tick;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* The room's slot in its set, or NULL. */
static slot *slot_of(const char *room_id) {
    slot *set = table[hs_str_hash(room_id) % SETS];
    for (int w = 0; w < WAYS; w++)
        if (set[w].room_id && !strcmp(set[w].room_id, room_id)) return &set[w];
    return NULL;
}

/* The slot a room not in the table takes: a free one, or the one used
 * longest ago. */
static slot *slot_for(const char *room_id) {
    slot *set = table[hs_str_hash(room_id) % SETS], *old = &set[0];
    for (int w = 0; w < WAYS; w++) {
        if (!set[w].room_id) return &set[w];
        if (set[w].used < old->used) old = &set[w];
    }
    return old;
}

static room_event *copy_event(const room_event *ev) {
    hs_err ignored = {0};
    room_event *c = room_event_parse_stored(ev->ver, ev->json, ev->event_id, &ignored);
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
    bool has = slot_of(room_id) != NULL;
    pthread_mutex_unlock(&mu);
    return has;
}

static entry *find(slot *s, long long stamp, const char *type, const char *state_key) {
    if (!s || s->stamp != stamp) return NULL;
    s->used = ++tick;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].type, type) && !strcmp(s->e[i].state_key, state_key)) return &s->e[i];
    return NULL;
}

bool room_current_cache_get(const char *room_id, long long stamp, const char *type,
                            const char *state_key, room_event **out) {
    *out = NULL;
    room_event held = {0}; /* the parts of the kept event its copy needs */
    pthread_mutex_lock(&mu);
    entry *e = find(slot_of(room_id), stamp, type, state_key);
    if (e && e->ev) {
        held = *e->ev;
        held.json = json_incref(e->ev->json);
        held.event_id = strdup(e->ev->event_id);
    }
    pthread_mutex_unlock(&mu);
    if (!e) return false;
    if (!held.json) return true; /* known: nothing there */
    *out = held.event_id ? copy_event(&held) : NULL;
    json_decref(held.json);
    free(held.event_id);
    return *out != NULL;
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
    if (find(s, stamp, type, state_key)) {
        pthread_mutex_unlock(&mu);
        free(fresh.type), free(fresh.state_key), room_event_free(fresh.ev);
        return;
    }
    /* Another room or another state, or full (a room of many senders):
     * start again with this entry. */
    if (!s || s->stamp != stamp || s->n == KEYS) {
        if (!s) s = slot_for(room_id);
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
        s->used = ++tick;
    }
    s->e[s->n++] = fresh;
    pthread_mutex_unlock(&mu);
    slot_clear(&old);
}
