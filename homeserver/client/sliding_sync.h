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
#include "sync_token.h"

/* What one room is asked for: the union over the lists and subscriptions
 * that include it, and what the connection already has of it. */
typedef struct ss_room_req {
    char *room_id;
    json_t *required_state; /* array of [type, state_key] (merged) */
    int timeline_limit;
    bool initial;           /* first time on this connection (or newly joined) */
    long long since;        /* events position the connection has the room up to; unused if initial */
    long long live_since;   /* the request's pos (events stream), -1 without: later events are live */
    bool state_again;       /* required_state widened: send all of it again */
    bool expanded;          /* timeline_limit grew: the latest timeline_limit events again */
    json_t *lazy_sent;      /* object user_id -> true: members sent for $LAZY; added to */
    const json_t *ignored;  /* the user's ignored_users (m.ignored_user_list), or NULL */
    bool limited;           /* out: the timeline left events out */
} ss_room_req;

/* A user's room, as the lists see it. */
typedef struct ss_room {
    char *room_id;
    char membership[16];
    long long member_pos;   /* stream position of the membership event */
    long long bump_stamp;   /* position of the room's latest bump event (message-like) */
    long long last_pos;     /* position of the room's latest event (its membership's if not joined) */
    bool encrypted, is_dm;
    bool partial;           /* joined with partial state, still resyncing (partial_rooms.h) */
    bool listed;            /* shown in lists; false: a left room only a subscription asked for */
    char *room_type;        /* create event's content.type, or NULL */
    json_t *tags;           /* the user's m.tag tags of the room (object), or NULL */
    /* A room this server is not in (an invite, knock or rejection kept by
     * federation in fed_remote_memberships): the stripped state its server
     * gave, the membership event and the room version; else NULL. */
    char *remote_state, *remote_event, *remote_version, *event_id;
} ss_room;

/* The user's rooms: joined, invited, knocked, banned, kicked from (until
 * forgotten), left since `since`, those this server is not in included;
 * and, not listed, the left rooms among `subscribed`. Invites of a user who
 * blocks invites (m.invite_permission_config) or from an ignored user
 * (ignored: the ignored_users object, or NULL) are left out. */
int ss_user_rooms(db_conn *c, const char *user_id, long long since, long long to, json_t *m_direct,
                  const json_t *ignored, const char *const *subscribed, size_t n_subscribed,
                  ss_room **out, size_t *n, hs_err *err);
void ss_rooms_free(ss_room *rooms, size_t n);

/* One room's response object, or NULL when nothing changed for an already
 * sent room. device_id: the requester's (its events carry their
 * transaction IDs, events_read.h). */
int ss_room_object(db_conn *c, const char *user_id, const char *device_id, const ss_room *room,
                   ss_room_req *req, long long to, json_t **out, hs_err *err);

/* The request's pure parts (sliding_request.c). ss_pos_parse: a pos
 * "<n>/<sync token>" (n counts the connection's responses); false when
 * malformed. ss_request_check: the body's shape (lists, ranges,
 * required_state, timeline_limit, filters, room_subscriptions, conn_id,
 * extensions), 0 or -1 with 400 M_BAD_JSON. ss_required_state_widened:
 * does `now` ask for a [type, state_key] that `before` did not? */
bool ss_pos_parse(const char *pos, long long *seq, sync_token *t);
int ss_request_check(const json_t *body, hs_err *err);
bool ss_required_state_widened(const json_t *before, const json_t *now);

/* The connection store (sliding_conn.c, table sliding_sync_connections). */
typedef struct ss_conn_id {
    const char *user_id, *device_id, *conn_id;
} ss_conn_id;

/* The room records (object room_id -> record) as of `pos`: a fresh empty
 * object when pos is NULL (the connection starts over), NULL with 400
 * M_UNKNOWN_POS when the connection never handed out pos or has moved two
 * positions past it, or NULL with a database error. */
json_t *ss_conn_begin(db_conn *c, const ss_conn_id *id, const char *pos, hs_err *err);

/* Store the records as of pos_out, the pos of the response about to go out
 * to a request made with pos_in (NULL: none). 0, or -1 with err. */
int ss_conn_commit(db_conn *c, const ss_conn_id *id, const char *pos_in, const char *pos_out,
                   const json_t *rooms, hs_err *err);

#endif
