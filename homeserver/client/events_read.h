/* events_read.h — stored room events as clients see them.
 *
 * Clients get the "client event" format: the PDU without its federation
 * fields, redacted when a redaction of it applies (with
 * unsigned.redacted_because), and with unsigned.age. */
#ifndef CLIENT_EVENTS_READ_H
#define CLIENT_EVENTS_READ_H

#include <stdbool.h>

#include "homeserver/db/db.h"
#include "rooms/rooms.h"

/* The client format of a PDU (new reference). redaction: the applying
 * redaction's PDU or NULL. with_room_id: false inside /sync's rooms. */
json_t *client_event_format(const char *event_id, const json_t *pdu, const room_version *v,
                            const json_t *redaction, const char *redaction_id,
                            bool with_room_id, long long now);

/* The same for a state event: replaces is the state event it replaced
 * (unsigned.replaces_state, v1.19), prev that event's PDU as clients may see
 * it (redacted if it was), whose content and sender become
 * unsigned.prev_content and unsigned.prev_sender; either may be NULL. */
json_t *client_event_format_state(const char *event_id, const json_t *pdu, const room_version *v,
                                  const json_t *redaction, const char *redaction_id,
                                  const char *replaces, const json_t *prev,
                                  bool with_room_id, long long now);

/* Events of a room with stream positions in (after, upto], accepted ones
 * only, at most limit of them: the newest (backwards) or the oldest
 * (forwards) ones. Appended to out in chronological order. *more tells
 * whether the range held more; *edge is the position of the last one
 * returned in the direction of travel (unchanged if none). */
int client_room_events(db_conn *c, const char *room_id, long long after, long long upto,
                       int limit, bool backwards, bool with_room_id, json_t *out, bool *more,
                       long long *edge, hs_err *err);

/* The same, keeping only what `viewer` may see under the room's history
 * visibility: world_readable to all; shared to members and past members of
 * that time; invited and joined from the viewer's invite or join on. The
 * visibility and membership in force are those of the closest earlier
 * events in stream order. *edge still moves over hidden events. Events get
 * their bundled aggregations (unsigned["m.relations"], see relations.h),
 * unsigned.membership (the viewer's membership at the event, "leave" when
 * none; v1.11) and, on those that `device` (the viewer's device, or NULL)
 * sent with PUT /send, unsigned.transaction_id. */
int client_room_events_for(db_conn *c, const char *viewer, const char *device,
                           const char *room_id, long long after, long long upto, int limit,
                           bool backwards, bool with_room_id, json_t *out, bool *more,
                           long long *edge, hs_err *err);

/* /sync's timeline: client_room_events_for backwards, except that a state
 * event that is still the room's current state at its key is shown
 * whatever the history visibility, as Synapse's sync always includes
 * current state: a member who could not see it when it was sent (a join
 * while they were away from a "joined" room) must still learn the state
 * they are in.
 *
 * topological: the newest events by depth (then position), as Synapse
 * reads a timeline that starts nowhere (an initial sync, a room newly
 * joined): after a fork, an event that arrived late from another server
 * but sits early in the DAG is not taken for the newest. Else by position.
 *
 * keep (may be NULL) is the caller's filter: the events it refuses do not
 * count towards limit, and older events are read in their place, in rounds
 * of at least ten, as Synapse's sync does for a filtered timeline. *more is
 * then whether kept events were left out (older ones read but not given,
 * or the range not read to its start). */
typedef bool (*client_event_keep)(const json_t *ev, void *ctx);
int client_room_timeline_for(db_conn *c, const char *viewer, const char *device,
                             const char *room_id, long long after, long long upto, int limit,
                             bool topological, client_event_keep keep, void *keep_ctx,
                             bool with_room_id, json_t *out, bool *more, long long *edge,
                             hs_err *err);

/* Events by IDs as `viewer` may see them under history visibility (the
 * rules of client_room_events_for), in timeline (stream) order, with their
 * bundled aggregations and the viewer's unsigned keys. Events not in the
 * timeline (outliers, rejected or soft-failed ones) and unknown IDs are
 * left out. */
int client_events_by_ids_for(db_conn *c, const char *viewer, const char *device,
                             const char *const *ids, size_t n, bool with_room_id, json_t *out,
                             hs_err *err);

/* One event by ID in client format, or NULL with 404 M_NOT_FOUND. */
json_t *client_event_by_id(db_conn *c, const char *event_id, bool with_room_id, hs_err *err);

/* Events by IDs (for state maps) in client format, appended to out. */
int client_events_by_ids(db_conn *c, const char *const *ids, size_t n, bool with_room_id,
                         json_t *out, hs_err *err);

/* Stripped state (invite_state, knock_state) of client-format events: type,
 * state_key, content and sender, but the m.room.create event whole (v1.16,
 * MSC4311: its ID and time too). A new array. */
json_t *client_strip_state(const json_t *events);

#endif
