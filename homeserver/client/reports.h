/* reports.h — content reports (events, rooms, users) as stored for the
 * server's admin; the endpoints are in reports.c, the listing is
 * `pvyhs report list`. */
#ifndef CLIENT_REPORTS_H
#define CLIENT_REPORTS_H

#include <jansson.h>

#include "homeserver/db/db.h"

#define CLIENT_REPORT_REASON_MAX 1000 /* characters, Synapse's limit for user reports */

/* Every stored report, oldest first: {"id", "kind" ("event" | "room" |
 * "user"), "reporter", "received_ts", and as they apply "room_id",
 * "event_id", "user_id", "reason", "score"}. *out is a new array. */
int client_reports_list(db_conn *c, json_t **out, hs_err *err);

#endif
