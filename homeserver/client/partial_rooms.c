/* partial_rooms.c — /sync's and sliding sync's view of rooms joined with
 * partial state (partial_rooms.h). */
#include "partial_rooms.h"

#include <string.h>

sync_partial_view sync_partial_view_of(bool lazy_load_members, bool partial, long long done_pos,
                                       long long since, long long to) {
    if (lazy_load_members) return SYNC_PARTIAL_SHOW;
    if (partial || done_pos > to) return SYNC_PARTIAL_HIDE;
    /* A token from before the resync: this client was never given the room
     * (or was given it before a partial rejoin): now it gets all of it. */
    if (since >= 0 && done_pos > since) return SYNC_PARTIAL_NEWLY_JOINED;
    return SYNC_PARTIAL_SHOW;
}

/* A user ID of another server (anything not ours counts: it may name a
 * member our partial state lacks). */
static bool remote_user(const char *key, const char *server_name) {
    const char *colon = strchr(key, ':');
    return !colon || strcmp(colon + 1, server_name) != 0;
}

bool ss_needs_full_state(const json_t *required_state, const char *server_name) {
    size_t i;
    json_t *pair;
    json_array_foreach(required_state, i, pair) {
        const char *t = json_string_value(json_array_get(pair, 0));
        const char *k = json_string_value(json_array_get(pair, 1));
        if (!t || !k) continue;
        if (!strcmp(t, "*")) {
            /* Other types' state is all there; members only of local users. */
            if (!strcmp(k, "*") || (k[0] == '@' && strchr(k, ':') && remote_user(k, server_name)))
                return true;
        } else if (!strcmp(t, "m.room.member")) {
            if (!strcmp(k, "$ME") || !strcmp(k, "$LAZY")) continue;
            if (!strcmp(k, "*") || remote_user(k, server_name)) return true;
        }
    }
    return false;
}
