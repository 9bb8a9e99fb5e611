/* account_data.h — a user's account data, global and per room.
 *
 * Clients store their settings here (m.direct, m.ignored_user_list, …); room
 * tags are the room's m.tag and the fully read marker its m.fully_read. Every
 * change takes a DB_STREAM_ACCOUNT_DATA position and wakes the user's waiting
 * /sync requests. */
#ifndef CLIENT_ACCOUNT_DATA_H
#define CLIENT_ACCOUNT_DATA_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"

/* The content of one account data type (new reference). room_id NULL or ""
 * for global data. NULL with 404 M_NOT_FOUND when the user has none of that
 * type, or with another error. */
json_t *client_account_data_get(db_conn *c, const char *user_id, const char *room_id,
                                const char *type, hs_err *err);

/* Whether an event is hidden from a user by their m.ignored_user_list:
 * ignored_users is that content's "ignored_users" object (NULL: none). Its
 * sender is ignored and it is not a state event: the spec keeps ignored
 * users' state events, which the client needs to know the room. */
bool client_ignored_event(const json_t *ignored_users, const json_t *ev);

/* Send client_account_data_get's read ahead (db_prefetch). */
void client_account_data_prefetch(db_conn *c, const char *user_id, const char *room_id,
                                  const char *type);

/* Store content (an object) as the user's account data of this type, commit,
 * and wake the user's /sync. No check of who may set which type: the
 * endpoints do that (m.fully_read and m.push_rules are the server's). */
int client_account_data_put(hs_server *srv, const char *user_id, const char *room_id,
                            const char *type, const json_t *content, hs_err *err);

/* The write path every account data change takes: in one transaction, run
 * st with $1 = a fresh account data stream position and $2… = params[0..n),
 * then release the position and, when st changed a row, wake user_id's
 * /sync. Returns the number of rows changed, or -1 with err. For statements
 * that change account data conditionally (tags, the fully read marker). */
long client_account_data_write(hs_server *srv, const char *user_id, db_stmt *st, int n,
                               const char *const *params, hs_err *err);

/* Add or replace one tag of the user's room (its m.tag account data, as PUT
 * …/tags/{tag} does); content is the tag's JSON object as text. Rows
 * changed, or -1 with err. No membership check: the caller's business. */
long client_tag_set(hs_server *srv, const char *user_id, const char *room_id, const char *tag,
                    const char *content, hs_err *err);

/* For /sync: the user's account data changed in stream positions (from, to]
 * (from 0: all of it), as {"type", "content"} events: global ones appended to
 * the array global, room ones to the array rooms[room_id] (created when
 * missing) of the object rooms. Either may be NULL to skip that kind. Rooms
 * are not filtered by membership: /sync decides which rooms it shows. */
int client_account_data_sync(db_conn *c, const char *user_id, long long from, long long to,
                             json_t *global, json_t *rooms, hs_err *err);

#endif
