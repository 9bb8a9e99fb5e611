/* partial_rooms.c — /sync's and sliding sync's view of rooms joined with
 * partial state (partial_rooms.h). */
#include "partial_rooms.h"

#include <stdlib.h>
#include <string.h>

#include "remote_rooms.h"

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

int client_partial_senders(db_conn *c, const char *room_id, const room_state_map *state,
                           const json_t *timeline, const char **ids, size_t *n, char ***owned,
                           size_t *n_owned, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT ON (m.state_key) m.event_id FROM events e"
        " CROSS JOIN LATERAL unnest(e.auth_ids) AS a(id)"
        " JOIN events m ON m.event_id = a.id AND m.type = 'm.room.member'"
        "  AND m.state_key = e.sender"
        " WHERE e.event_id = ANY($1::text[]) ORDER BY m.state_key, m.depth DESC");
    int partial = client_room_is_partial(c, room_id, err);
    if (partial <= 0) return partial;
    size_t nt = json_array_size(timeline), k = 0, i;
    const char **evs = calloc(nt + 1, sizeof *evs);
    json_t *ev;
    json_array_foreach(timeline, i, ev) {
        const char *sender = json_string_value(json_object_get(ev, "sender"));
        if (evs && sender && !room_state_map_get(state, "m.room.member", sender))
            evs[k++] = json_string_value(json_object_get(ev, "event_id"));
    }
    if (!evs || !k) return free(evs), 0;
    char *arr = db_text_array(evs, k);
    free(evs);
    PGresult *r = arr ? db_run(c, &q, 1, (const char *[]){arr}, err) : NULL;
    free(arr);
    if (!r) return -1;
    *owned = calloc((size_t)PQntuples(r) + 1, sizeof **owned);
    for (int j = 0; *owned && j < PQntuples(r); j++)
        ids[(*n)++] = (*owned)[(*n_owned)++] = strdup(PQgetvalue(r, j, 0));
    PQclear(r);
    return 0;
}
