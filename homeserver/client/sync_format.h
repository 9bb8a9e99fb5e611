/* sync_format.h — the filter's event_format and event_fields, applied to the
 * room events of a /sync response once it is built. */
#ifndef CLIENT_SYNC_FORMAT_H
#define CLIENT_SYNC_FORMAT_H

#include <jansson.h>

#include "filters.h"
#include "homeserver/db/db.h"

/* Rewrites the timeline, state and state_after events of rooms.join and
 * rooms.leave: "federation" gives each event's PDU fields (auth_events,
 * prev_events, depth, hashes, signatures, room_id, …) beside the client
 * ones; event_fields then keeps only the paths named. Nothing to do without
 * either. Events are replaced, never changed in place (they may be shared).
 * A failed read of the PDUs leaves the client format. */
void client_sync_format(db_conn *c, const client_filter *f, json_t *rooms);

#endif
