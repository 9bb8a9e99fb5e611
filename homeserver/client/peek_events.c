/* peek_events.c — GET /events?room_id=…: the spec's event stream of one room
 * for those peeking into it (Room Previews; the Guest Access module lists it).
 * matrix-js-sdk's peekInRoom polls it after /rooms/{roomId}/initialSync,
 * passing that answer's messages.end as `from`.
 *
 * A long poll like /sync (sync_wait.h): with nothing new after `from`, the
 * request parks until the room changes or `timeout` (default 30 s, as
 * Synapse) passes. What the user may read is the room's view (room_access.h);
 * history visibility applies per event; the room's typing, receipts and
 * members' presence come too (with room_id). `from` is a /sync-style token
 * (or room initialSync's "t…" messages.end); `end` is one. Without `from` it
 * answers at once with the current token as `end`. Without room_id, GET
 * /events is the user's own stream (event_stream.c); guests must give a
 * room_id (Synapse). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "event_stream.h"
#include "events_read.h"
#include "presence.h"
#include "homeserver/core/clock.h"
#include "room_access.h"
#include "room_snapshot.h"
#include "sync_token.h"
#include "sync_wait.h"

/* Events of the room after `from` that the user may read, then the room's
 * typing, receipts and members' presence since then (as Synapse's stream
 * for one room): the answer, with *empty set when there is nothing yet. */
static json_t *events_after(db_conn *c, hs_req *r, const char *room_id, const sync_token *from,
                            const sync_token *now, int limit, bool *empty, bool *final,
                            hs_err *err) {
    client_room_view v;
    if (client_room_view_of(c, room_id, r->user_id, &v, err) < 0) return NULL;
    long long at = now->pos[DB_STREAM_EVENTS], after = from->pos[DB_STREAM_EVENTS];
    long long upto = v.horizon < at ? v.horizon : at;
    /* After a leave nothing more will come: answer at once. */
    *final = strcmp(v.membership, "join") && !v.peeking;
    json_t *chunk = json_array();
    bool more = false;
    long long edge = after;
    int rc = 0;
    if (after < upto)
        rc = client_room_events_for(c, r->user_id, r->device_id, room_id, after, upto, limit,
                                    false, true, chunk, &more, &edge, err);
    char *rooms[] = {(char *)room_id};
    if (rc == 0 && !*final)
        rc = client_event_stream_ephemeral(c, r->user_id, rooms, 1, from, now, chunk, err);
    json_t *presence = json_array();
    if (rc == 0 && !*final && from->pos[DB_STREAM_PRESENCE] != now->pos[DB_STREAM_PRESENCE])
        rc = client_presence_room_sync(c, room_id, from->pos[DB_STREAM_PRESENCE],
                                       now->pos[DB_STREAM_PRESENCE], presence, err);
    client_presence_add_user_ids(presence);
    json_array_extend(chunk, presence);
    json_decref(presence);
    if (rc < 0) return json_decref(chunk), NULL;
    client_events_v1_format(chunk);
    sync_token end = *now;
    end.pos[DB_STREAM_EVENTS] = more ? edge : (upto > after ? upto : after);
    char end_s[256];
    sync_token_format(&end, end_s, sizeof end_s);
    *empty = json_array_size(chunk) == 0;
    return json_pack("{s:o, s:s}", "chunk", chunk, "end", end_s);
}

static int get_events(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = hs_req_query(r, "room_id");
    if (!room_id && r->is_guest)
        return hs_err_set(err, 400, "M_MISSING_PARAM", "Guests must give 'room_id'");
    if (!room_id) return client_event_stream_get(r, out, err);
    long long timeout;
    int limit;
    const char *f = hs_req_query(r, "from");
    sync_token from;
    if ((f && client_event_stream_from(f, &from, err) < 0) ||
        client_event_stream_params(r, &timeout, &limit, err) < 0)
        return -1;
    /* Without a token there is nothing to wait past (a resumed run could not
     * tell "now" from when it parked): answer at once with the token to use. */
    long long deadline = sync_wait_begin(r, f ? timeout : 0);
    for (;;) {
        sync_token now;
        sync_token_now(&now);
        if (!f) from = now; /* no token: what happens from now on */
        db_conn *c = db_acquire(r->srv->db, err);
        if (!c) return -1;
        bool empty = false, final = false;
        json_t *resp = events_after(c, r, room_id, &from, &now, limit, &empty, &final, err);
        db_release(r->srv->db, c);
        if (!resp) return -1;
        bool wait = empty && !final && hs_now_ms() < deadline && !atomic_load(&r->srv->stopping);
        char *rooms[] = {(char *)room_id};
        if (wait && sync_wait_park(r, rooms, 1, &now)) {
            json_decref(resp);
            return HS_SUSPENDED;
        }
        if (!wait) {
            char start[256];
            if (!f) sync_token_format(&from, start, sizeof start);
            json_object_set_new(resp, "start", json_string(f ? f : start));
            *out = resp;
            return 200;
        }
        json_decref(resp); /* something committed meanwhile: look again */
    }
}

void client_peek_events_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/events", get_events, HS_AUTH | HS_R0 | HS_GUEST);
}
