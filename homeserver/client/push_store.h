/* push_store.h — push rules in PostgreSQL (sql/005_push.sql), and what /sync
 * needs of them. Every function runs on the caller's connection. */
#ifndef CLIENT_PUSH_STORE_H
#define CLIENT_PUSH_STORE_H

#include <jansson.h>

#include "homeserver/db/db.h"

/* A user's stored rules and changes to defaults, in the shapes push_rules.h
 * takes (new references; both objects, possibly empty). 0 or -1. */
int push_store_load(db_conn *c, const char *user_id, json_t **user_rules, json_t **changes,
                    hs_err *err);

/* The same for several users at once: objects keyed by user ID (users with
 * nothing stored are absent), for every user joined to room_id in its current
 * state, and `extra` (an invitee; may be NULL). */
int push_store_load_room(db_conn *c, const char *room_id, const char *extra, json_t **rules_by_user,
                         json_t **changes_by_user, hs_err *err);

/* Send push_store_load_room's reads ahead (db_prefetch), so they travel with
 * the caller's next statement. */
void push_store_prefetch_room(db_conn *c, const char *room_id, const char *extra);

/* The user's whole rule set as the m.push_rules account data event
 * ({"type": "m.push_rules", "content": {"global": …}}), for /sync's global
 * account_data: given when from is 0 (an initial sync) or the rules changed
 * in account data stream positions (from, to] (a change after `to` shows in
 * the next sync); *event is NULL otherwise. 0 or -1. */
int client_push_rules_account_data(db_conn *c, const char *user_id, long long from, long long to,
                                   json_t **event, hs_err *err);

#endif
