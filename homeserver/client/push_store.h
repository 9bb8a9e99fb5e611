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

/* SQL for a user's stored rules and changes to defaults inside another
 * query (user: an SQL expression for the user ID), as one JSON text each (NULL
 * when there are none), which push_store_rules_from_json and
 * push_store_changes_from_json turn into push_store_load's shapes: so the
 * rules of an event's recipients come with the recipients, in one statement. */
#define PUSH_STORE_RULES_OF(user)                                                          \
    "(SELECT json_agg(json_build_array(p.kind, p.rule_id, p.conditions, p.pattern,"      \
    " p.actions, p.enabled) ORDER BY p.kind, p.priority DESC)::text FROM push_rules p"   \
    " WHERE p.user_id = " user ")"
#define PUSH_STORE_CHANGES_OF(user)                                                         \
    "(SELECT json_agg(json_build_array(d.kind, d.rule_id, d.enabled, d.actions))::text"   \
    " FROM push_rule_default_changes d WHERE d.user_id = " user ")"

/* New references; both objects, possibly empty (text may be NULL). */
json_t *push_store_rules_from_json(const char *text);
json_t *push_store_changes_from_json(const char *text);

/* Record that user_id's rules changed at account-data position pos (the
 * push_rules_stream row /sync reads; also the lock ordering one user's
 * changes). 0 or -1. */
int push_store_bump(db_conn *c, const char *user_id, long long pos, hs_err *err);

/* The user's whole rule set as the m.push_rules account data event
 * ({"type": "m.push_rules", "content": {"global": …}}), for /sync's global
 * account_data: given when from is 0 (an initial sync) or the rules changed
 * in account data stream positions (from, to] (a change after `to` shows in
 * the next sync); *event is NULL otherwise. 0 or -1. */
int client_push_rules_account_data(db_conn *c, const char *user_id, long long from, long long to,
                                   json_t **event, hs_err *err);

#endif
