/* remote_rooms.c — the hooks of remote_rooms.h, and the question that
 * decides whether a membership change is ours to make or another server's. */
#include "remote_rooms.h"

#include "homeserver/core/log.h"

#include <stdatomic.h>

static _Atomic(const client_remote_rooms *) hooks;

void client_remote_rooms_set(const client_remote_rooms *ops) { atomic_store(&hooks, ops); }

const client_remote_rooms *client_remote_rooms_get(void) { return atomic_load(&hooks); }

int client_room_has_local_member(db_conn *c, const hs_server *srv, const char *room_id,
                                 hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join' AND substr(state_key, strpos(state_key, ':') + 1) = $2 LIMIT 1");
    PGresult *r = db_run(c, &q, 2, (const char *[]){room_id, srv->cfg->server_name}, err);
    if (!r) return -1;
    int in = PQntuples(r) > 0;
    PQclear(r);
    return in;
}

void client_await_full_state(hs_server *srv, const char *room_id) {
    const client_remote_rooms *h = client_remote_rooms_get();
    if (h && h->await_full_state &&
        h->await_full_state(srv, room_id, CLIENT_PARTIAL_STATE_WAIT_MS) == 0)
        hs_info("%s: still resyncing its members; answering with those known", room_id);
}

int client_room_is_partial(db_conn *c, const char *room_id, hs_err *err) {
    const client_remote_rooms *h = client_remote_rooms_get();
    return h && h->is_partial ? h->is_partial(c, room_id, err) : 0;
}
