/* room_initial_sync.c — GET /rooms/{roomId}/initialSync: a snapshot of one
 * room (its state, its latest messages, the user's room account data, its
 * members' presence and receipts), which the spec keeps for peeking into
 * rooms one is not in (Room Previews, and the Guest Access module lists it).
 * matrix-js-sdk's peekInRoom calls it.
 *
 * What the user may see (a member now, a former member up to their leave,
 * a peeker of a world_readable room) is the room view's (room_access.h);
 * the snapshot itself is room_snapshot.h's, shared with GET /initialSync. */
#include "client.h"
#include "room_access.h"
#include "room_snapshot.h"

#define DEFAULT_LIMIT 10
#define MAX_LIMIT 1000

static int get_room_initial_sync(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0];
    int limit;
    if (client_old_limit_param(hs_req_query(r, "limit"), DEFAULT_LIMIT, MAX_LIMIT, &limit, err) < 0)
        return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    client_room_view v;
    json_t *res = NULL;
    if (client_room_view_of(c, room_id, r->user_id, &v, err) == 0)
        res = client_room_snapshot(c, r->user_id, r->device_id, room_id, &v,
                                   &(client_snapshot_opts){.limit = limit, .ephemeral = true},
                                   err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    *out = res;
    return 200;
}

void client_room_initial_sync_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/rooms/{roomId}/initialSync", get_room_initial_sync,
             HS_AUTH | HS_R0 | HS_GUEST);
}
