/* room_snapshot.h — one room as the deprecated initialSync APIs show it:
 * GET /rooms/{roomId}/initialSync answers with one, GET /initialSync lists
 * one per room the user is in or left (old_sync.yaml, room_initial_sync.yaml).
 *
 * And the other shapes those old APIs share: the v1 event format, presence
 * events with the user in content.user_id (Synapse's
 * format_user_presence_state), events outside /sync's per-room sections
 * with their room_id. */
#ifndef CLIENT_ROOM_SNAPSHOT_H
#define CLIENT_ROOM_SNAPSHOT_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/db/db.h"
#include "room_access.h"

typedef struct client_snapshot_opts {
    int limit;                    /* messages, at most */
    bool ephemeral;               /* with presence and receipts (the room form) */
    const json_t *account_by_room; /* the user's room account data by room, as
                                      client_account_data_sync fills it: read
                                      once for many rooms; NULL: read here */
} client_snapshot_opts;

/* {room_id, messages {chunk, start, end}, state, visibility, account_data
 * [, presence, receipts][, membership]} as the view v (client_room_view_of)
 * of user_id sees the room: the latest `limit` messages up to its horizon
 * (history visibility applied; "t…" tokens for /messages), the state then,
 * the user's room account data (m.tag first, as Synapse), and, with
 * o->ephemeral, the joined members' presence (offline for those with none
 * yet, as Synapse; none when presence is off) and the room's receipts, both
 * empty when the user left. Events in the v1 format. No "membership" when
 * peeking. A new object, or NULL with err. */
json_t *client_room_snapshot(db_conn *c, const char *user_id, const char *device_id,
                             const char *room_id, const client_room_view *v,
                             const client_snapshot_opts *o, hs_err *err);

/* The v1 client format the old APIs serve, as Synapse's ClientV1 (which
 * SyTest reads): a room event (one with an event_id) also gets "user_id"
 * (its sender) and, at the top level, the unsigned keys age,
 * redacted_because, replaces_state, prev_content, invite_room_state and
 * knock_room_state. In place, for each event of the array. */
void client_events_v1_format(json_t *events);

/* "public" when the room is in the room directory, else "private" (the
 * snapshots' "visibility", as Synapse); NULL with err. */
const char *client_room_directory_visibility(db_conn *c, const char *room_id, hs_err *err);

/* m.presence events as /sync has them ({type, sender, content}) get
 * content.user_id, which the old APIs' clients read. */
void client_presence_add_user_ids(json_t *events);

/* Parse the old APIs' `limit` query parameter (absent: def; capped at max);
 * 0, or -1 with 400 M_INVALID_PARAM. */
int client_old_limit_param(const char *s, int def, int max, int *out, hs_err *err);

#endif
