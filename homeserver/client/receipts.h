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

/* For /sync: the receipts of these rooms changed in receipts stream
 * positions (from, to] (from 0: all of them), one m.receipt event per room
 * with any, stored as by_room[room_id] = {"type": "m.receipt", "content":
 * {event_id: {receipt_type: {user_id: {"ts"[, "thread_id"]}}}}}. Other users'
 * m.read.private receipts are left out. */
int client_receipts_sync(db_conn *c, const char *user_id, const char *const *room_ids, size_t n,
                         long long from, long long to, json_t *by_room, hs_err *err);

#endif
