/* suspension.h — what a suspended account may still send into rooms (spec:
 * account suspension, as Synapse draws the line): leaving a room or
 * rejecting an invite, and redacting its own events. Routes that only act
 * are refused whole by HS_REFUSE_SUSPENDED (http/http.h). */
#ifndef CLIENT_SUSPENSION_H
#define CLIENT_SUSPENSION_H

#include "homeserver/http/http.h"

/* 0 when r's account is not suspended or may send this event (content: its
 * content; state_key NULL for a message), else -1 with 403
 * M_USER_SUSPENDED (or a database error). */
int client_suspended_may_send(hs_req *r, const char *type, const char *state_key,
                              const json_t *content, hs_err *err);

/* The same for redacting an event sent by target_sender. */
int client_suspended_may_redact(hs_req *r, const char *target_sender, hs_err *err);

#endif
