/* peek_events.c — GET /events?room_id=…: the spec's event stream of one room
 * for those peeking into it (Room Previews; the Guest Access module lists it).
 * matrix-js-sdk's peekInRoom polls it after /rooms/{roomId}/initialSync,
 * passing that answer's messages.end as `from`.
 *
 * A long poll like /sync (sync_wait.h): with nothing new after `from`, the
 * request parks until the room changes or `timeout` (default 30 s, as
 * Synapse) passes. What the user may read is the room's view (room_access.h);
 * history visibility applies per event. Without `from` it answers at once
 * with the current token as `end`. Without room_id, GET /events is the
 * user's own stream (event_stream.c); guests must give a room_id (Synapse). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "event_stream.h"
#include "events_read.h"
#include "homeserver/core/clock.h"
#include "room_access.h"
#include "sync_token.h"
#include "sync_wait.h"

static int parse_params(hs_req *r, long long *from, long long *timeout, int *limit, hs_err *err) {
    const char *f = hs_req_query(r, "from");
    *from = -1;
    if (f && (*from = sync_token_events_pos(f)) < 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid 'from' token");
    return client_event_stream_params(r, timeout, limit, err);
}

/* Events of the room after `from` that the user may read: the answer, or
 * NULL with *empty set when there are none yet. */
static json_t *events_after(db_conn *c, hs_req *r, const char *room_id, long long from,
                            long long now, int limit, bool *empty, bool *final, hs_err *err) {
    client_room_view v;
    if (client_room_view_of(c, room_id, r->user_id, &v, err) < 0) return NULL;
    long long upto = v.horizon < now ? v.horizon : now;
    /* After a leave nothing more will come: answer at once. */
    *final = strcmp(v.membership, "join") && !v.peeking;
    json_t *chunk = json_array();
    bool more = false;
    long long edge = from;
    if (from < upto && client_room_events_for(c, r->user_id, r->device_id, room_id, from, upto,
                                              limit, false, true, chunk, &more, &edge, err) < 0)
        return json_decref(chunk), NULL;
    char start[32], end[32];
    snprintf(start, sizeof start, "t%lld", from);
    snprintf(end, sizeof end, "t%lld", more ? edge : (upto > from ? upto : from));
    *empty = json_array_size(chunk) == 0;
    return json_pack("{s:o, s:s, s:s}", "chunk", chunk, "start", start, "end", end);
}

static int get_events(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = hs_req_query(r, "room_id");
    if (!room_id && r->is_guest)
        return hs_err_set(err, 400, "M_MISSING_PARAM", "Guests must give 'room_id'");
    if (!room_id) return client_event_stream_get(r, out, err);
    long long from, timeout;
    int limit;
    if (parse_params(r, &from, &timeout, &limit, err) < 0) return -1;
    /* Without a token there is nothing to wait past (a resumed run could not
     * tell "now" from when it parked): answer at once with the token to use. */
    long long deadline = sync_wait_begin(r, from < 0 ? 0 : timeout);
    for (;;) {
        sync_token now;
        sync_token_now(&now);
        long long at = now.pos[DB_STREAM_EVENTS];
        if (from < 0) from = at; /* no token: what happens from now on */
        db_conn *c = db_acquire(r->srv->db, err);
        if (!c) return -1;
        bool empty = false, final = false;
        json_t *resp = events_after(c, r, room_id, from, at, limit, &empty, &final, err);
        db_release(r->srv->db, c);
        if (!resp) return -1;
        bool wait = empty && !final && hs_now_ms() < deadline && !atomic_load(&r->srv->stopping);
        char *rooms[] = {(char *)room_id};
        if (wait && sync_wait_park(r, rooms, 1, &now)) {
            json_decref(resp);
            return HS_SUSPENDED;
        }
        if (!wait) {
            *out = resp;
            return 200;
        }
        json_decref(resp); /* something committed meanwhile: look again */
    }
}

void client_peek_events_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/events", get_events, HS_AUTH | HS_R0 | HS_GUEST);
}
