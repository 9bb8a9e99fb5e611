/* receipts.h — read receipts (m.read, m.read.private; threaded or not) and
 * the fully read marker, set by POST /rooms/{roomId}/receipt/… and
 * /rooms/{roomId}/read_markers and read by /sync.
 *
 * Receipts live in the receipts table, one per (room, type, user, thread),
 * and only move forward in the room's stream order. */
#ifndef CLIENT_RECEIPTS_H
#define CLIENT_RECEIPTS_H

#include <jansson.h>
#include <stddef.h>

#include "homeserver/db/db.h"
#include "homeserver/http/http.h"

/* For /sync: the receipts of these rooms changed in receipts stream
 * positions (from, to] (from 0: all of them), one m.receipt event per room
 * with any, stored as by_room[room_id] = {"type": "m.receipt", "content":
 * {event_id: {receipt_type: {user_id: {"ts"[, "thread_id"]}}}}}. Other users'
 * m.read.private receipts are left out. */
int client_receipts_sync(db_conn *c, const char *user_id, const char *const *room_ids, size_t n,
                         long long from, long long to, json_t *by_room, hs_err *err);

/* A receipt of another server's user, from an m.receipt EDU (the caller
 * checked that the user is of the sending server and joined, and that
 * event_id is in the room): stored as a local one is, only moving forward,
 * waking the room's /sync requests. type must be m.read (private receipts
 * never cross servers); data is the EDU's {ts, thread_id?} (NULL: now).
 * 0, or -1 with err. */
int client_receipt_store_remote(hs_server *srv, const char *room_id, const char *type,
                                const char *user_id, const char *event_id, const json_t *data,
                                hs_err *err);

#endif
