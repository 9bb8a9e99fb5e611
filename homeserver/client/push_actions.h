/* push_actions.h — what push rules decide for each room event, stored per
 * local user (event_push_actions), and the unread counts /sync reports. */
#ifndef CLIENT_PUSH_ACTIONS_H
#define CLIENT_PUSH_ACTIONS_H

#include <jansson.h>

#include "homeserver/http/http.h"
#include "rooms/rooms.h"

/* Run every local recipient's push rules on ev, in the transaction that
 * persists it (after room_store_persist / room_send_local): the local users
 * joined to the room other than the sender, and the target of an invite.
 * Stores a row for each user the event notifies or highlights, and records a
 * local sender's own event as read up to there (the spec counts sending an
 * event as updating one's read receipt). Outliers, rejected and soft-failed
 * events notify nobody. 0, or -1 with err (a database error). */
int client_push_process_event(db_conn *c, const hs_server *srv, const room_event *ev,
                              hs_err *err);

/* client_push_process_event for several events in one go (two statements
 * whatever their number: the batched local sends of room_send.c). */
int client_push_process_events(db_conn *c, const hs_server *srv, const room_event *const *evs,
                               size_t n, hs_err *err);

/* Send ahead (db_prefetch) the recipients query client_push_process_event
 * will run for a local non-state event proto (with "sender") in room_id, so
 * that it costs no round trip of its own. Call it once the room's lock is
 * sent (room_store_prefetch_head), so it reads what the lock protects. */
void client_push_prefetch(db_conn *c, const hs_server *srv, const char *room_id,
                          const json_t *proto);

/* The same for a batch of such events (client_push_process_events): for
 * each, its room room_ids[i] and proto protos[i], in the order the events
 * will be processed. Call it once the rooms' lock is sent
 * (room_store_prefetch_heads). */
void client_push_prefetch_many(db_conn *c, const hs_server *srv, const char *const *room_ids,
                               const json_t *const *protos, size_t n);

/* Unread notification counts of user_id in room_id, for /sync: what
 * event_push_actions holds after the user's latest m.read / m.read.private
 * receipt (an unthreaded receipt covers every thread, a threaded one its
 * thread) or their own latest event in that thread.
 * unread_thread_notifications NULL: *unread_notifications counts the whole
 * room ({"notification_count", "highlight_count"}). Otherwise (the filter's
 * unread_thread_notifications is true) it counts the main timeline only, and
 * *unread_thread_notifications is {thread root ID: counts} for threads with
 * unread notifications, or NULL when there are none. New references. */
int client_push_unread(db_conn *c, const char *user_id, const char *room_id,
                       json_t **unread_notifications, json_t **unread_thread_notifications,
                       hs_err *err);

#endif
