/* rooms_internal.h — what the room files of federation/ share: rooms across
 * servers (receiving PDUs and EDUs, serving events and state, the join,
 * leave, invite and knock handshakes, both sides).
 *
 *   util.c            query strings, IDs, paths, transactions
 *   room_access.c     who is in a room, server ACLs, the checks every
 *                     room endpoint makes of the calling server
 *   event_verify.c    checks on receipt 1–3: format, signatures, content hash;
 *                     adding our own signature
 *   pdus_serve.c      stored events as PDUs, filtered for a server
 *   fetch.c           asking other servers for events and state
 *   outliers.c        storing events whose state we do not know (auth
 *                     chains, state from /state and send_join), auth-checked
 *   pdu_checks.c      checks on receipt 4–6 of a room's new event: missing
 *                     prev events, the state before it, persisting
 *   send.c, edu.c     PUT /send and its EDUs
 *   device_list_resync.c  device list updates in order, resyncs
 *   state.c, event.c, backfill.c, missing_events.c, timestamp.c
 *                     the read endpoints
 *   backfill_pull.c   asking another server for a room's history
 *   membership.c      the make_ and send_ handshakes join.c, leave.c and
 *                     knock.c share
 *   invite.c          PUT /invite/v2 and asking another server to sign ours
 *   third_party_invite.c  PUT /exchange_third_party_invite
 *   remote_join.c     our users joining, knocking on and leaving rooms of
 *                     other servers
 *   partial_state.c   rooms joined with partial state, resynced in the
 *                     background
 *   directory.c       /query/directory and resolving remote aliases
 */
#ifndef FED_ROOMS_INTERNAL_H
#define FED_ROOMS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "federation.h"
#include "rooms/rooms.h"

/* Synapse's limits on what one request may ask for. */
#define FED_TXN_MAX_PDUS 50
#define FED_TXN_MAX_EDUS 100
#define FED_BACKFILL_MAX 100
#define FED_MISSING_EVENTS_MAX 20
/* How many events a gap is filled with before we ask for the state instead,
 * and the most events one state fetch may bring (a room of 20,000 state
 * events and their auth chains fits). */
#define FED_MISSING_EVENTS_ASK 10
#define FED_FETCH_MAX_EVENTS 100000

/* ---- util.c ---------------------------------------------------------------- */

/* Every value of a repeated query parameter in a request target (path and
 * query as received), percent-decoded, at most max of them (malloc'd).
 * Returns how many were stored. */
size_t fed_query_values(const char *uri, const char *key, char **out, size_t max);
void fed_strv_free(char **v, size_t n);

/* The server part of a user, room or event ID: after the first ':', "" if none. */
const char *fed_id_domain(const char *id);

/* Is user_id a well-formed ID of a user of server? */
bool fed_user_of(const char *user_id, const char *server);

/* "/_matrix/federation/vN/<what>/<escaped a>[/<escaped b>]" (malloc'd). */
char *fed_path2(const char *prefix, const char *a, const char *b);

/* {"origin", "origin_server_ts", "pdus"} around pdus (stolen). */
json_t *fed_transaction(const hs_server *srv, json_t *pdus);

/* The auth chain of ids (room_store_auth_chain), in room version 12 with
 * the room's create event, which every event there cites implicitly (as
 * Synapse counts it). */
int fed_auth_chain(db_conn *c, const char *room_id, const char *const *ids, size_t n, char ***out,
                   size_t *n_out, hs_err *err);

/* [200, body]: the answer of the v1 send_join, send_leave and invite, a
 * historical mistake the spec keeps (body is stolen). */
json_t *fed_v1_answer(json_t *body);

/* A JSON array of n strings. */
json_t *fed_str_array(const char *const *ids, size_t n);

/* ---- policy_sign.c --------------------------------------------------------- */

/* A PDU received over federation (pushed by /send, pulled to fill a gap or
 * by backfill, sent with send_join/leave/knock, an invite), in a room that
 * uses a Policy Server (rooms/policy_server.h): without a valid signature of
 * it, one is asked for; if none comes, ev->policy_refused is set
 * (room_receive soft-fails it; send_* and /invite answer 403).
 * 0, or -1 with err (database). */
int fed_policy_check_incoming(hs_server *srv, room_event *ev, hs_err *err);

/* ---- room_access.c --------------------------------------------------------- */

/* Does server have a joined member in room_id's current state? 1, 0, -1. */
int fed_server_in_room(db_conn *c, const char *room_id, const char *server, hs_err *err);


/* The checks of every room endpoint: the room is known (404 M_NOT_FOUND),
 * origin has a member joined to it (403 M_FORBIDDEN) and the room's ACL
 * lets origin in (403 M_FORBIDDEN). 0, or -1 with err. */
int fed_check_origin(db_conn *c, const char *room_id, const char *origin, hs_err *err);

/* Servers with joined members in the current state (new array). */
json_t *fed_servers_in_room(db_conn *c, const char *room_id, hs_err *err);
/* An event a server sent us directly (send_join, send_leave, send_knock,
 * invite) failed fed_event_verify: a signature that does not hold is 403
 * M_FORBIDDEN (Synapse), anything else 400 M_INVALID_PARAM. */
void fed_verify_error(hs_err *err);

/* The servers to join room_id through, for a room alias of ours: this one
 * first, then the others in the room (fed_servers_in_room). New array, or
 * NULL with err. */
json_t *fed_alias_servers(db_conn *c, const hs_server *srv, const char *room_id, hs_err *err);


/* ---- event_verify.c ------------------------------------------------------ */

/* Checks on receipt 1–3 of a PDU of room version v, taken as received
 * ("unsigned" is dropped): the format (room_event_parse), the signatures
 * (the sender's server, except for an invite from a third-party invite; v1–2
 * also the event ID's server; a restricted join also the authorising
 * server's), then the content hash: on mismatch the event is redacted and
 * the redacted copy is what is returned. Returns the parsed event (caller
 * frees) or NULL with 400 M_BAD_JSON (format) / 401 M_UNAUTHORIZED
 * (signature). */
room_event *fed_event_verify(hs_server *srv, const room_version *v, const json_t *pdu, hs_err *err);

/* Add this server's signature to an event of version v (json is changed in
 * place; the event ID is unchanged: signatures are not part of it). */
int fed_event_sign(const hs_server *srv, const room_version *v, json_t *json, hs_err *err);

/* ---- pdus_serve.c ---------------------------------------------------------- */

/* Stored events as PDUs for server `origin`, in the order of ids, unknown
 * and rejected ones left out (and outliers when timeline_only): what the
 * history visibility at an event hides from origin (no member of origin
 * invited or joined when it is "invited" / "joined") is sent redacted, as
 * Synapse's filter_events_for_server does. origin NULL: no filtering (state
 * and auth chains, which every server in the room may see). */
int fed_pdus_for_server(db_conn *c, const char *origin, const char *const *ids, size_t n,
                        bool timeline_only, json_t *out, hs_err *err);

/* ---- fetch.c --------------------------------------------------------------- */

/* GET /event/{eventId} from dest, verified (fed_event_verify) and checked to
 * be of room_id. NULL with err. */
room_event *fed_fetch_event(hs_server *srv, const char *dest, const room_version *v,
                            const char *room_id, const char *event_id, hs_err *err);

/* ---- outliers.c ------------------------------------------------------------ */

/* Store events of room_id (PDUs as received) whose state we do not know as
 * outliers: each is verified, its auth events (fetched from dest when
 * neither given nor stored, dest may be NULL) are stored first, and it is
 * checked against them (stored rejected when it fails). Events that cannot
 * be verified, or whose auth events cannot be found, are left out (logged).
 * Already stored events are skipped. In its own transactions. 0, or -1 with
 * err for a database failure. */
int fed_store_outliers(hs_server *srv, const char *dest, const room_version *v, const char *room_id,
                       const json_t *pdus, hs_err *err);

/* Make sure these events are stored (as anything): fetched from dest and
 * stored as outliers when not. 0 when all are, else -1 with err. */
int fed_ensure_events(hs_server *srv, const char *dest, const room_version *v, const char *room_id,
                      const char *const *ids, size_t n, hs_err *err);

/* ---- pdu_checks.c ---------------------------------------------------------- */

/* A PDU pushed by origin (PUT /send): checks on receipt, get_missing_events
 * for a gap of up to FED_MISSING_EVENTS_ASK events, then the state before it
 * and room_receive, then what local sends do after commit. *event_id gets
 * the event's ID as soon as it is known (malloc'd, even on failure).
 * Returns 0 when the event was handled (stored, whatever its verdict, or
 * already known, or dropped because its prev events cannot be had, which
 * Synapse's sender never hears of either), or -1 with err (the result's
 * "error"). */
int fed_receive_pdu(hs_server *srv, const char *origin, const json_t *pdu, char **event_id,
                    hs_err *err);

/* The state before ev: the resolved states after its prev events, those we
 * lack taken from origin (/state_ids). *out NULL when ev has one prev event
 * we have and !always (room_receive then takes the state after it itself). */
int fed_state_before(hs_server *srv, const char *origin, const room_event *ev, bool always,
                     room_state_map **out, hs_err *err);

/* Persist an event whose prev events are stored, with the state before it
 * (NULL: the state after its single prev event), as room_receive does, in
 * one transaction that also runs the client hooks; wakes readers after
 * commit. Refused verdicts become an error when require_accepted (403
 * M_FORBIDDEN: send_join/leave/knock), otherwise they are stored. With
 * forward_except, an accepted event is queued for the room's other servers
 * but that one (an event we were asked to pass on). */
int fed_persist_event(hs_server *srv, const room_event *ev, const room_state_map *state_before,
                      bool require_accepted, const char *forward_except, room_verdict *verdict,
                      hs_err *err);

/* ---- backfill_pull.c ------------------------------------------------------- */

/* Pull up to limit events of room_id's past from a server in it (GET
 * /backfill from the backward extremities near the start of our timeline)
 * and store them as history. Returns how many were stored (0: none to be
 * had, or no server answered), or -1 with err for a database failure. */
int fed_backfill_room(hs_server *srv, const char *room_id, int limit, hs_err *err);

/* fed_persist_event with more to say. */
typedef struct fed_persist_opts {
    bool require_accepted;
    const char *forward_except;
    /* state_before was worked out while the room's state was partial: if
     * the resync committed since, it is worked out again in the
     * transaction (from the prev events' new state). */
    bool state_from_partial;
    /* The event is checked as in a partial-state room (room_receive_ex)
     * even if the room is not marked yet: the join that makes it one. */
    bool partial;
    /* Our own join, through another server's send_join: when none of our
     * users is joined, our extremities and current state are from before
     * they left and are forgotten first (room_store_forget_current), so
     * the join is judged by the state it came with, not soft-failed
     * against a ban or leave lifted since. */
    bool rejoin;
    /* Our own event that another server already has and sends to the room
     * (a join through its send_join): the sender leaves it out. */
    bool not_sent;
    /* Run in the same transaction after an accepted event. */
    int (*also)(db_conn *c, const room_event *ev, void *arg, hs_err *err);
    void *also_arg;
} fed_persist_opts;
int fed_persist_event_opts(hs_server *srv, const room_event *ev,
                           const room_state_map *state_before, const fed_persist_opts *o,
                           room_verdict *verdict, hs_err *err);

/* The stored, not rejected state events among ids, as a state map (one
 * query; events we lack are left out). 0, or -1 with err. */
/* Run st, whose only parameter is a text[] of ids, on a pooled connection:
 * its result, or NULL with err. */
PGresult *fed_run_ids(hs_server *srv, db_stmt *st, const char *const *ids, size_t n,
                      hs_err *err);

int fed_state_map_of_ids(hs_server *srv, const char *const *ids, size_t n, room_state_map *out,
                         hs_err *err);

/* A PDU's event ID before anything else is checked: carried (v1–2) or its
 * reference hash; malloc'd, NULL when it has none. */
char *fed_pdu_event_id(const room_version *v, const json_t *pdu);

/* All string members of a JSON array, borrowed (free the array only); NULL
 * when it is not an array. */
const char **fed_strings_of(const json_t *a, size_t *n);

/* ---- partial_state.c ------------------------------------------------------- */

/* Mark room_id as joined with partial state at our join join_event_id, with
 * the servers to resync from (the one that answered the join first, then
 * its servers_in_room), in the caller's transaction; fed_partial_state_wake
 * after the COMMIT. */
int fed_partial_state_mark(db_conn *c, const char *room_id, const char *join_event_id,
                           const char *const *servers, size_t n, hs_err *err);

/* Is room_id's state partial (the resync has not finished)? 1, 0, -1. */
int fed_room_is_partial(db_conn *c, const char *room_id, hs_err *err);

/* The resync thread (fed_partial_state_start in federation.h), stopped
 * first by fed_shutdown; woken when a room is marked. */
void fed_partial_state_stop(void);
void fed_partial_state_wake(void);

/* Wait up to timeout_ms for room_id's full state: 1 when it is there (or
 * was never partial), 0 on timeout or shutdown, -1 on a database error. */
int fed_partial_state_await(hs_server *srv, const char *room_id, long timeout_ms);

/* ---- send.c ---------------------------------------------------------------- */

/* The parts of a /send body, checked: pdus (<= 50 entries) and edus (<= 100
 * entries, ignored unless {edu_type: string, content: object}), origin
 * matching the authenticated origin when given. Borrowed from body; an
 * absent list is NULL (iterating it does nothing). 0, or -1 with 400 (403
 * for another origin). */
int fed_txn_parse(const json_t *body, const char *origin, const json_t **pdus, const json_t **edus,
                  hs_err *err);

/* ---- edu.c ----------------------------------------------------------------- */

/* Handle one EDU from origin; unknown types and bad contents are ignored
 * (logged at debug), as the spec asks of EDUs. */
void fed_handle_edu(hs_server *srv, const char *origin, const char *type, const json_t *content);

/* ---- device_list_resync.c ---------------------------------------------------- */

/* An m.device_list_update from origin, applied in order: after the last
 * one we applied for the user, else the user's list is fetched again (GET
 * /user/devices). 0 (also when ignored), or -1 with err. */
int fed_device_list_update(hs_server *srv, const char *origin, const json_t *content,
                           hs_err *err);

/* ---- membership.c ---------------------------------------------------------- */

/* GET make_{join,leave,knock}: the template for user_id's membership in
 * room_id, after the room version (ver, when given), the room and the auth
 * rules agree. content may carry join_authorised_via_users_server. */
int fed_make_membership(hs_req *r, const char *membership, json_t *content, bool check_ver,
                        json_t **out, hs_err *err);

/* PUT send_{join,leave,knock}: the signed event in r->json checked (the
 * path's room and event ID, type, membership, sender of origin, state_key)
 * and persisted; *ev_out the stored event (caller frees), *state_before the
 * state before it (caller frees). */
int fed_send_membership(hs_req *r, const char *membership, room_event **ev_out,
                        room_state_map **state_before, hs_err *err);

/* The stripped state servers send with invites and knocks: the room's
 * create, join rules, name, avatar, canonical alias, encryption, topic
 * (full PDUs, per spec v1.16) from state. New array. */
json_t *fed_stripped_state_pdus(db_conn *c, const room_state_map *state, hs_err *err);

/* The client's view of a stripped state list: {type, state_key, content,
 * sender} of each entry (new array). */
json_t *fed_strip_for_clients(const json_t *pdus);

/* Restricted join rules: when user_id (not yet invited or joined) needs an
 * authorising user to join room_id, the local member who can invite (the
 * highest power level) goes into content.join_authorised_via_users_server.
 * 0, or -1 with 403 M_FORBIDDEN, 400 M_UNABLE_TO_AUTHORISE_JOIN or
 * M_UNABLE_TO_GRANT_JOIN. */
int fed_restricted_join(db_conn *c, const hs_server *srv, const char *room_id, const char *user_id,
                        json_t *content, hs_err *err);

/* ---- remote memberships (remote_join.c, invite.c) ------------------------ */

/* Record (or replace) a local user's invite/knock/leave in a room we are
 * not in (fed_remote_memberships) and wake the user's /sync. via: the
 * server to leave through later (the inviter's, the knock's resident). */
int fed_remote_membership_store(hs_server *srv, const room_event *ev, const char *user_id,
                                const char *membership, const json_t *stripped_pdus,
                                const char *via, hs_err *err);

/* ---- invite.c ---------------------------------------------------------------- */

/* Our invite ev (stored, uncommitted, on c) of another server's user: that
 * server signs it (PUT /v2/invite) and the signed copy replaces the stored
 * one. 0, or -1 with the other server's answer. */
int fed_invite_remote(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err);

/* The invitee's server signs ev (PUT /v2/invite with the room's stripped
 * state from c): ev with its signature added (new reference), or NULL
 * with the other server's answer. */
json_t *fed_invite_ask(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err);

/* ---- directory.c ------------------------------------------------------------- */

/* Resolve another server's alias through its directory (GET
 * /query/directory): the room ID (malloc'd) and servers (new array). 404
 * M_NOT_FOUND when it has none. */
int fed_query_alias(hs_server *srv, const char *alias, char **room_id, json_t **servers,
                    hs_err *err);

/* ---- routes ---------------------------------------------------------------- */

/* Every route of these files (rooms_routes.c), called by fed_routes. */
void fed_rooms_routes(hs_router *rt);

void fed_send_routes(hs_router *rt);
void fed_state_routes(hs_router *rt);
void fed_event_routes(hs_router *rt);
void fed_backfill_routes(hs_router *rt);
void fed_missing_events_routes(hs_router *rt);
void fed_timestamp_routes(hs_router *rt);
void fed_join_routes(hs_router *rt);
void fed_leave_routes(hs_router *rt);
void fed_knock_routes(hs_router *rt);
void fed_invite_routes(hs_router *rt);
void fed_third_party_invite_routes(hs_router *rt);
void fed_directory_routes(hs_router *rt);

/* The hooks the Client-Server API calls (homeserver/client/remote_rooms.h). */
void fed_install_client_hooks(void);

#endif
