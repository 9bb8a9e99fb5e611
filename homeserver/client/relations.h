/* relations.h — what other areas call of event relationships (m.relates_to),
 * threads and the search index.
 *
 * Every persisted event passes through client_relations_on_event in the
 * transaction that stores it; readers then find an event's children, a
 * room's threads and its searchable text without parsing events. Served
 * events get the spec's bundled aggregations (unsigned["m.relations"]):
 * m.thread (latest_event, count, current_user_participated), m.replace (the
 * latest valid edit, spec v1.7) and m.reference (the referencing IDs). */
#ifndef CLIENT_RELATIONS_H
#define CLIENT_RELATIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "homeserver/db/db.h"
#include "rooms/rooms.h"

/* Record ev's relationship (its content's m.relates_to with a rel_type),
 * its thread and its searchable text (m.room.message body, m.room.name,
 * m.room.topic), in the caller's transaction, after the event is stored.
 * For local events (client_room_send) and for events received over
 * federation alike, whatever their verdict: readers skip events that are
 * rejected, soft-failed, outliers or redacted. Idempotent, so call it again
 * when an outlier joins the timeline (that is when its thread moves).
 * 0, or -1 with err (a database error). */
int client_relations_on_event(db_conn *c, const room_event *ev, hs_err *err);

/* The same for several events (their searchable texts in one statement). */
int client_relations_on_events(db_conn *c, const room_event *const *evs, size_t n,
                               hs_err *err);

/* The checks on a local user's new event (spec and Synapse), made once the
 * auth rules admitted it, in its transaction and before
 * client_relations_on_event (a failure rolls the event back): the parent of
 * a relation must be known and in the same room (400 M_UNKNOWN); an
 * annotation needs a key of at most 500 characters (400 M_UNKNOWN) and may
 * not repeat the sender's unredacted one of the same type and key
 * (400 M_DUPLICATE_ANNOTATION); a thread cannot start at an event that has
 * a relation itself (400 M_UNKNOWN). */
int client_relations_check_local(db_conn *c, const room_event *ev, hs_err *err);

/* Add bundled aggregations to the client-format events events[from..] as
 * `viewer` sees them (children from users they ignore left out). Batched:
 * a few queries for the whole array, none when no event there has children
 * (has_children, when not NULL, says which do: index i - from). State events
 * get none, nor do edits and annotations; redacted events keep their thread
 * and references but lose their edit. 0, or -1 with err. */
int client_relations_bundle(db_conn *c, const char *viewer, json_t *events, size_t from,
                            const bool *has_children, hs_err *err);

#endif
