/* event_stream.h — GET /events: the deprecated v1 event stream
 * (old_sync.yaml), for all the user's rooms (event_stream.c) or, with
 * room_id, for one room peeked into (peek_events.c). */
#ifndef CLIENT_EVENT_STREAM_H
#define CLIENT_EVENT_STREAM_H

#include <jansson.h>

#include "homeserver/http/http.h"
#include "sync_token.h"

/* The `timeout` (ms; default 30 s as Synapse, capped at 10 minutes) and
 * `limit` (default 10, capped at 1000) parameters both forms take. 0, or -1
 * with 400 M_INVALID_PARAM. */
int client_event_stream_params(hs_req *r, long long *timeout, int *limit, hs_err *err);

/* `from` in either form: a /sync "s…" token, or a pagination "t…" token
 * (room initialSync's messages.end), which gives the events position only,
 * the other streams starting from now. 0, or -1 with 400 M_INVALID_PARAM. */
int client_event_stream_from(const char *s, sync_token *from, hs_err *err);

/* The m.typing and m.receipt events (with their room_id) of these rooms
 * that changed between from and now, appended to chunk. 0 or -1 with err. */
int client_event_stream_ephemeral(db_conn *c, const char *user_id, char **rooms, size_t n,
                                  const sync_token *from, const sync_token *now, json_t *chunk,
                                  hs_err *err);

/* GET /events without room_id: the user's stream from `from` (a /sync
 * token, or /initialSync's end). A handler: 200, HS_SUSPENDED or -1. */
int client_event_stream_get(hs_req *r, json_t **out, hs_err *err);

#endif
