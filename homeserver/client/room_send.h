/* room_send.h — a local user's event into a room, from request to wake-up:
 * one transaction (stream position, build, authorise, persist), then the
 * stream position is released and the room's waiting /sync requests (and a
 * membership event's target) are woken. Every client area that writes room
 * events goes through here. */
#ifndef CLIENT_ROOM_SEND_H
#define CLIENT_ROOM_SEND_H

#include "homeserver/http/http.h"
#include "rooms/rooms.h"

/* proto: {"type", "sender", "content"[, "state_key"]}. v: the room version
 * for an m.room.create (NULL otherwise). Returns the persisted event (caller
 * frees) or NULL with err (403 M_FORBIDDEN when the auth rules refuse it).
 * A state event that repeats the current one (type, key, sender, content)
 * is not sent again: the current event is returned, as Synapse does. */
room_event *client_room_send(hs_server *srv, const room_version *v, const char *room_id,
                             const json_t *proto, hs_err *err);

/* client_room_send, idempotent per (sender, device_id, room, txn_id): a
 * repeated transaction sends nothing and returns NULL with *existing set to
 * the first event's ID (malloc'd), err untouched. */
room_event *client_room_send_txn(hs_server *srv, const char *room_id, const json_t *proto,
                                 const char *device_id, const char *txn_id, char **existing,
                                 hs_err *err);

/* client_room_send_txn for a request handler, without holding its thread
 * while the event is written, when others are being written: a
 * message-like event (no state key, relation or redaction) is then parked
 * (hs_req_suspend) and joins the next batch of concurrent sends, written in
 * one transaction by a writer thread (homeserver/db/group_commit.h).
 * HS_SUSPENDED: parked; the handler returns HS_SUSPENDED and, run again
 * (r->ctx set), takes the answer with client_room_send_parked. 1: sent at
 * once (not batchable, or nothing else being written), the answer in *ev,
 * *existing and err as client_room_send_txn gives them. room_id and txn_id
 * must live as long as the request; proto gets a reference. */
int client_room_send_queued(hs_req *r, const char *room_id, json_t *proto, const char *txn_id,
                           room_event **ev, char **existing, hs_err *err);

/* The answer of a parked send, as client_room_send_txn gives it. */
room_event *client_room_send_parked(hs_req *r, char **existing, hs_err *err);

/* The same for a state event given by parts. */
room_event *client_room_send_state(hs_server *srv, const char *room_id, const char *sender,
                                   const char *type, const char *state_key, json_t *content,
                                   hs_err *err);

/* After a membership event committed: what follows from it outside the
 * room (device lists for end-to-end encryption). */
void client_room_membership_changed(hs_server *srv, const room_event *ev);

/* What every stored room event needs, local or received over federation,
 * in the transaction that stored it (after room_send_local / room_receive):
 * its relations and search text, and its push actions (which skip rejected
 * and soft-failed events). 0, or -1 with err. */
int client_room_event_stored(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err);

/* The same for several events stored together (a batch of local sends). */
int client_room_events_stored(db_conn *c, hs_server *srv, const room_event *const *evs,
                              size_t n, hs_err *err);

/* In the transaction that stored ev: when it invites another server's user,
 * that server signs it (PUT /invite/v2, remote_rooms.h) and the signed copy
 * replaces the stored one; its refusal is -1 with err, which rolls the
 * invite back. 0 for every other event. */
int client_room_invite_remote(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err);

/* After that transaction committed (and its stream position was released),
 * for an event that entered the room (accepted, not soft-failed): wake the
 * room's waiting /sync requests and the target of a membership event, and
 * run client_room_membership_changed. */
void client_room_event_committed(hs_server *srv, const room_event *ev);

#endif
