/* sliding_sync.h — simplified sliding sync (MSC4186), which Element X needs:
 * the client asks for windows of its room list sorted by recent activity and
 * for chosen rooms, each with the state and timeline it needs.
 *
 * Internal to homeserver/client: the handler (sliding_sync.c) and the room
 * part (sliding_rooms.c). */
#ifndef CLIENT_SLIDING_SYNC_H
#define CLIENT_SLIDING_SYNC_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/db/db.h"

/* What one room is asked for: the union over the lists and subscriptions
 * that include it. */
typedef struct ss_room_req {
    char *room_id;
    json_t *required_state; /* array of [type, state_key] (merged) */
    int timeline_limit;
} ss_room_req;

/* A user's room, as the lists see it. */
typedef struct ss_room {
    char *room_id;
    char membership[16];
    long long member_pos;   /* stream position of the membership event */
    long long bump_stamp;   /* position of the room's latest event the user can see */
    bool encrypted, is_dm;
    bool partial;           /* joined with partial state, still resyncing (partial_rooms.h) */
    char *room_type;        /* create event's content.type, or NULL */
    /* A room this server is not in (an invite, knock or rejection kept by
     * federation in fed_remote_memberships): the stripped state its server
     * gave, the membership event and the room version; else NULL. */
    char *remote_state, *remote_event, *remote_version, *event_id;
} ss_room;

/* The user's rooms (joined, invited, knocked; left or banned since `since`),
 * those this server is not in included, as /sync v2 lists them. Invites of
 * a user who blocks invites (m.invite_permission_config) are left out. */
int ss_user_rooms(db_conn *c, const char *user_id, long long since, long long to, json_t *m_direct,
                  ss_room **out, size_t *n, hs_err *err);
void ss_rooms_free(ss_room *rooms, size_t n);

/* One room's response object, or NULL when nothing changed for an already
 * sent room. since < 0: an initial response for this room. device_id: the
 * requester's (its events carry their transaction IDs, events_read.h). */
int ss_room_object(db_conn *c, const char *user_id, const char *device_id, const ss_room *room,
                   const ss_room_req *req, long long since, long long to, bool initial,
                   json_t **out, hs_err *err);

#endif
