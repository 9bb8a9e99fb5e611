/* rooms.h — the rooms/ contract: what the Client-Server API and federation
 * call. The room model lives in event.h (PDUs), auth.h (authorization rules),
 * state_res.h (state resolution) and store.h (PostgreSQL); this header adds
 * the two paths an event takes into a room: built here, or received. */
#ifndef ROOMS_ROOMS_H
#define ROOMS_ROOMS_H

#include "auth.h"
#include "event.h"
#include "room_version.h"
#include "server_acl.h"
#include "state_res.h"
#include "store.h"

/* Synapse's limit on prev_events for a new event: the most recent extremities. */
#define ROOM_MAX_PREV_FOR_NEW 10

/* Build, authorise and persist an event of this server in one go, in the
 * caller's transaction. proto holds type, state_key (for state events),
 * sender and content; the rest comes from the room: prev_events (its forward
 * extremities), depth, auth_events (the auth events selection from its current
 * state), origin_server_ts (unless proto sets it: an application service's
 * `ts`), hashes and signature. For m.room.create, v is the
 * new room's version and room_id is ignored for v12 (derived from the event);
 * otherwise v may be NULL and comes from the room.
 * Returns the persisted event (caller frees) or NULL with err: 403 M_FORBIDDEN
 * when the auth rules refuse it, 404 M_NOT_FOUND for an unknown room.
 * stream_ordering: a position reserved with db_stream_reserve (0: take one). */
room_event *room_send_local(db_conn *c, const room_version *v, const char *room_id,
                            const json_t *proto, const char *server_name,
                            const hs_signing_key *key, long long stream_ordering, hs_err *err);

/* room_send_local for non-state events of several rooms (one event per
 * room), in one go: the rooms are locked together, each event is built and
 * checked on its room's current state, and those built are persisted
 * together. out[i] is the event of protos[i] in room_ids[i], or NULL when it
 * was not sent this way: refused, or its room is not a plain one (no single
 * extremity, a Policy Server); room_send_local then gives the precise
 * answer. stream_orderings: reserved positions. Returns 0, or -1 with err
 * when the transaction failed (then every out[i] is NULL). */
int room_send_local_many(db_conn *c, const char *const *room_ids, const json_t *const *protos,
                         size_t n, const char *server_name, const hs_signing_key *key,
                         const long long *stream_orderings, room_event **out, hs_err *err);

/* The unsigned template of an event another server will finish (make_join,
 * make_leave, make_knock): proto (type, state_key, sender, content) with
 * room_id, origin_server_ts, prev_events and depth from the forward
 * extremities and auth_events from the current state, as room_send_local
 * fills them; no hashes, signatures or event ID. v may be NULL (the room's).
 * A new reference, or NULL with err (404 M_NOT_FOUND for an unknown room). */
json_t *room_event_template(db_conn *c, const room_version *v, const char *room_id,
                            const json_t *proto, hs_err *err);

/* What happened to an incoming event (checks on receipt of a PDU). */
typedef enum room_verdict {
    ROOM_ACCEPTED = 0,
    ROOM_REJECTED = 1,     /* failed against its auth events or the state before it */
    ROOM_SOFT_FAILED = 2,  /* fine by its own state, but not by the current state */
} room_verdict;

/* Authorise an event received from another server and persist it with the
 * verdict, in the caller's transaction. Its auth events must already be
 * stored (fetching missing ones is federation's job: a missing one gives
 * 404 M_NOT_FOUND and nothing is stored). state_before is the state before the
 * event (NULL: the state after its single prev event). The reason for a
 * rejection or soft failure is written to why (may be NULL). */
int room_receive(db_conn *c, const room_event *ev, const room_state_map *state_before,
                 long long stream_ordering, room_verdict *verdict, char *why, size_t why_len,
                 hs_err *err);

/* The same for an event of the room's past pulled by backfill: checked
 * against its auth events and the state before it (rejected otherwise), but
 * not against the current state, which it does not change (room_persist_item's
 * history); stream_ordering is its (negative) backfill position. */
int room_receive_history(db_conn *c, const room_event *ev, const room_state_map *state_before,
                         long long stream_ordering, room_verdict *verdict, char *why,
                         size_t why_len, hs_err *err);

/* room_receive for a room whose state may be partial (a partial-state join,
 * MSC3706): with partial, the checks against the state before the event and
 * against the current state fill the keys those states lack from the
 * event's own auth events (which it must pass strictly, as always), so an
 * event is not rejected or soft-failed for member events we have not
 * fetched yet. */
int room_receive_ex(db_conn *c, const room_event *ev, const room_state_map *state_before,
                    bool partial, long long stream_ordering, room_verdict *verdict, char *why,
                    size_t why_len, hs_err *err);

#endif
