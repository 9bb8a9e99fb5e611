/* fed_outbound.h — what the Client-Server API asks of federation's outbound
 * side: waking the federation sender when a local event or typing
 * notification is to go out, and asking other servers about their users
 * (profiles, device keys, one-time keys).
 *
 * federation/ builds on this layer (it serves our profiles and keys to other
 * servers and hands what they send to the client areas), so the arrow cannot
 * point back: the client layer reaches federation through these hooks, which
 * federation installs at start-up (fed_routes). Without them (unit tests, the
 * CLI) nothing is sent and every remote lookup fails as if the remote server
 * were unreachable (502 / a `failures` entry). */
#ifndef CLIENT_FED_OUTBOUND_H
#define CLIENT_FED_OUTBOUND_H

#include <jansson.h>
#include <stdbool.h>

#include "homeserver/http/http.h"
#include "rooms/event.h"

typedef struct client_fed_outbound {
    /* A local event committed (ev may be NULL: several did): the sender
     * picks them up from the events stream anyway; this only saves it the
     * wait. Never blocks. */
    void (*event_committed)(hs_server *srv, const room_event *ev);
    /* A local user started or stopped typing (m.typing EDU). Never blocks. */
    void (*typing)(hs_server *srv, const char *room_id, const char *user_id, bool typing);
    /* GET /_matrix/federation/v1/query/profile of a remote user (field NULL:
     * the whole profile). 0 with *out, or -1: the remote's own 4xx error,
     * or 502 M_UNKNOWN when it could not be reached. */
    int (*profile)(hs_server *srv, const char *user_id, const char *field, json_t **out,
                   hs_err *err);
    /* /user/keys/query to each server of by_server ({server: {user: [device
     * IDs]}}), in parallel, each within timeout_ms; what comes back is merged
     * into the three result objects (user → …), unreachable servers into
     * failures (server → {"status", "message"}). */
    void (*keys_query)(hs_server *srv, const json_t *by_server, long timeout_ms,
                       json_t *device_keys, json_t *master_keys, json_t *self_signing_keys,
                       json_t *failures);
    /* /user/keys/claim likewise: by_server {server: {user: {device:
     * algorithm}}}; claimed keys merged into one_time_keys. */
    void (*keys_claim)(hs_server *srv, const json_t *by_server, long timeout_ms,
                       json_t *one_time_keys, json_t *failures);
} client_fed_outbound;

/* Install the hooks (federation does, once, before serving). */
void client_fed_set_outbound(const client_fed_outbound *o);

/* The calls the client areas make; each does nothing (or fails as described
 * above) while no hooks are installed. */
void client_fed_event_committed(hs_server *srv, const room_event *ev);
void client_fed_typing(hs_server *srv, const char *room_id, const char *user_id, bool typing);
int client_fed_profile(hs_server *srv, const char *user_id, const char *field, json_t **out,
                       hs_err *err);
void client_fed_keys_query(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *device_keys, json_t *master_keys, json_t *self_signing_keys,
                           json_t *failures);
void client_fed_keys_claim(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *one_time_keys, json_t *failures);

#endif
