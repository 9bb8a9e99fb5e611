/* state_map.c — (type, state_key) -> event ID, as an open-addressing index
 * over a dense entry array.
 *
 * The dense array makes iteration and copying linear and cache-friendly; the
 * index holds entry numbers (+1, 0 = empty) probed linearly, and removal
 * shifts the probe run back instead of leaving tombstones, so a map that
 * churns never slows down. Each entry owns one block "type\0state_key\0" and
 * one event ID string. */
#include "state_map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct sm_entry {
    char *key;        /* "type\0state_key\0" */
    const char *skey; /* points into key */
    char *event_id;
    uint64_t hash;
} sm_entry;

struct room_state_map {
    sm_entry *entries;
    size_t count, cap;
    uint32_t *slots; /* entry index + 1; 0 = empty */
    size_t nslots;   /* power of two, or 0 */
};

/* FNV-1a over type, a separator no UTF-8 string contains, then state_key. */
static uint64_t sm_hash(const char *type, const char *state_key) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)type; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0xffu) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)state_key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h ^ (h >> 29);
}

room_state_map *room_state_map_new(void) { return calloc(1, sizeof(room_state_map)); }

void room_state_map_clear(room_state_map *m) {
    if (!m) return;
    for (size_t i = 0; i < m->count; i++) {
        free(m->entries[i].key);
        free(m->entries[i].event_id);
    }
    m->count = 0;
    if (m->slots) memset(m->slots, 0, m->nslots * sizeof *m->slots);
}

void room_state_map_free(room_state_map *m) {
    if (!m) return;
    room_state_map_clear(m);
    free(m->entries);
    free(m->slots);
    free(m);
}

size_t room_state_map_count(const room_state_map *m) { return m ? m->count : 0; }

/* The slot holding (type, state_key), or the empty slot where it would go. */
static size_t sm_find(const room_state_map *m, uint64_t h, const char *type,
                      const char *state_key, bool *found) {
    size_t mask = m->nslots - 1, i = (size_t)h & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t s = m->slots[i];
        if (!s) {
            *found = false;
            return i;
        }
        const sm_entry *e = &m->entries[s - 1];
        if (e->hash == h && strcmp(e->key, type) == 0 && strcmp(e->skey, state_key) == 0) {
            *found = true;
            return i;
        }
    }
}

/* Rebuild the index at twice the size; entries do not move. */
static int sm_grow_index(room_state_map *m) {
    size_t n = m->nslots ? m->nslots * 2 : 16;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
    for (size_t k = 0; k < m->count; k++) {
        size_t i = (size_t)m->entries[k].hash & (n - 1);
        while (slots[i]) i = (i + 1) & (n - 1);
        slots[i] = (uint32_t)(k + 1);
    }
    return 0;
}

static int sm_reserve(room_state_map *m) {
    if (m->count == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        if (cap > UINT32_MAX - 1) return -1;
        sm_entry *e = realloc(m->entries, cap * sizeof *e);
        if (!e) return -1;
        m->entries = e;
        m->cap = cap;
    }
    /* Keep the index at most half full so probe runs stay short. */
    if ((m->count + 1) * 2 > m->nslots) return sm_grow_index(m);
    return 0;
}

int room_state_map_set(room_state_map *m, const char *type, const char *state_key,
                       const char *event_id) {
    if (!m || !type || !state_key || !event_id) return -1;
    if (sm_reserve(m) < 0) return -1;
    uint64_t h = sm_hash(type, state_key);
    bool found;
    size_t slot = sm_find(m, h, type, state_key, &found);
    char *id = strdup(event_id);
    if (!id) return -1;
    if (found) {
        sm_entry *e = &m->entries[m->slots[slot] - 1];
        free(e->event_id);
        e->event_id = id;
        return 0;
    }
    size_t tl = strlen(type), kl = strlen(state_key);
    char *key = malloc(tl + kl + 2);
    if (!key) {
        free(id);
        return -1;
    }
    memcpy(key, type, tl + 1);
    memcpy(key + tl + 1, state_key, kl + 1);
    m->entries[m->count] = (sm_entry){key, key + tl + 1, id, h};
    m->slots[slot] = (uint32_t)(++m->count);
    return 0;
}

const char *room_state_map_get(const room_state_map *m, const char *type,
                               const char *state_key) {
    if (!m || !m->count || !type || !state_key) return NULL;
    bool found;
    size_t slot = sm_find(m, sm_hash(type, state_key), type, state_key, &found);
    return found ? m->entries[m->slots[slot] - 1].event_id : NULL;
}

/* Close the gap at slot `hole` by shifting later members of the run back. */
static void sm_backshift(room_state_map *m, size_t hole) {
    size_t mask = m->nslots - 1;
    for (size_t i = (hole + 1) & mask; m->slots[i]; i = (i + 1) & mask) {
        size_t home = (size_t)m->entries[m->slots[i] - 1].hash & mask;
        /* Move i into the hole unless its home lies cyclically in (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays) continue;
        m->slots[hole] = m->slots[i];
        m->slots[i] = 0;
        hole = i;
    }
}

bool room_state_map_remove(room_state_map *m, const char *type, const char *state_key) {
    if (!m || !m->count) return false;
    bool found;
    size_t slot = sm_find(m, sm_hash(type, state_key), type, state_key, &found);
    if (!found) return false;
    size_t idx = m->slots[slot] - 1, last = m->count - 1;
    free(m->entries[idx].key);
    free(m->entries[idx].event_id);
    m->slots[slot] = 0;
    sm_backshift(m, slot);
    if (idx != last) {
        /* The last entry moves into idx: repoint its slot. */
        size_t mask = m->nslots - 1, i = (size_t)m->entries[last].hash & mask;
        while (m->slots[i] != last + 1) i = (i + 1) & mask;
        m->slots[i] = (uint32_t)(idx + 1);
        m->entries[idx] = m->entries[last];
    }
    m->count--;
    return true;
}

bool room_state_map_next(const room_state_map *m, size_t *iter, const char **type,
                         const char **state_key, const char **event_id) {
    if (!m || !iter || *iter >= m->count) return false;
    const sm_entry *e = &m->entries[(*iter)++];
    if (type) *type = e->key;
    if (state_key) *state_key = e->skey;
    if (event_id) *event_id = e->event_id;
    return true;
}

room_state_map *room_state_map_copy(const room_state_map *m) {
    room_state_map *c = room_state_map_new();
    if (!c || !m) return c;
    for (size_t i = 0; i < m->count; i++) {
        const sm_entry *e = &m->entries[i];
        if (room_state_map_set(c, e->key, e->skey, e->event_id) < 0) {
            room_state_map_free(c);
            return NULL;
        }
    }
    return c;
}

bool room_state_map_equal(const room_state_map *a, const room_state_map *b) {
    if (room_state_map_count(a) != room_state_map_count(b)) return false;
    for (size_t i = 0; a && i < a->count; i++) {
        const sm_entry *e = &a->entries[i];
        const char *v = room_state_map_get(b, e->key, e->skey);
        if (!v || strcmp(v, e->event_id) != 0) return false;
    }
    return true;
}
