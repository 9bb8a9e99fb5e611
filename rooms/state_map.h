/* state_map.h — a room state: (event type, state key) -> event ID.
 *
 * The value type of state resolution, state groups and /state answers. A
 * room's state runs to tens of thousands of entries, so this is a hash map
 * with O(1) get/set and iteration over a dense array; it copies the strings it
 * is given, so a map never points into someone else's memory. */
#ifndef ROOM_STATE_MAP_H
#define ROOM_STATE_MAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct room_state_map room_state_map;

/* An empty map, or NULL when out of memory. Free with room_state_map_free. */
room_state_map *room_state_map_new(void);
void room_state_map_free(room_state_map *m);

/* A deep copy, or NULL when out of memory. */
room_state_map *room_state_map_copy(const room_state_map *m);

/* Remove every entry (keeps the allocation for reuse). */
void room_state_map_clear(room_state_map *m);

size_t room_state_map_count(const room_state_map *m);

/* Set (type, state_key) to event_id, replacing any previous value. The
 * strings are copied. 0, or -1 when out of memory (the map is unchanged). */
int room_state_map_set(room_state_map *m, const char *type, const char *state_key,
                       const char *event_id);

/* The event ID at (type, state_key), or NULL. Valid until the entry is
 * replaced or removed, or the map is cleared or freed. */
const char *room_state_map_get(const room_state_map *m, const char *type,
                               const char *state_key);

/* Remove (type, state_key); true if it was there. */
bool room_state_map_remove(room_state_map *m, const char *type, const char *state_key);

/* Iterate in no particular order:
 *     size_t it = 0; const char *t, *k, *id;
 *     while (room_state_map_next(m, &it, &t, &k, &id)) ...
 * The map must not be modified during the walk. Any out-pointer may be NULL. */
bool room_state_map_next(const room_state_map *m, size_t *iter, const char **type,
                         const char **state_key, const char **event_id);

/* Same keys with the same event IDs. */
bool room_state_map_equal(const room_state_map *a, const room_state_map *b);

#endif
