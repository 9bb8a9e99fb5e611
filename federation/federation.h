/* federation.h — the Server-Server API: the transport every federation
 * feature is built on, and the routes.
 *
 * The transport, in the order a request meets it:
 *
 *   policy     which servers and addresses we talk to at all
 *              (federation_domain_whitelist, ip_range_blacklist/whitelist)
 *   discovery  server name -> host, port, Host header and TLS name, per the
 *              spec's "Resolving server names" (IP literal, explicit port,
 *              /.well-known/matrix/server cached per its headers, SRV
 *              _matrix-fed._tcp then _matrix._tcp, else port 8448)
 *   client     outbound HTTPS through libcurl: one shared multi handle driven
 *              by its own thread (connections and TLS sessions are reused
 *              across requests); callers block on their request only.
 *              Certificates are checked against the system store plus
 *              federation_custom_ca_list; every address curl would connect to
 *              is checked against the IP policy first.
 *   X-Matrix   every outbound request is signed; every inbound request on a
 *              federation route is verified by the HTTP layer before its
 *              handler runs (r->origin then names the calling server).
 *   keys       remote servers' signing keys fetched directly or through the
 *              notaries in trusted_key_servers, cached in PostgreSQL
 *              (sql/009_federation_keys.sql), and our notary endpoints.
 *
 * Every function here may block on the network or the database: call them
 * from request handlers or worker threads, never while holding a lock others
 * wait for. All are thread-safe. */
#ifndef FED_FEDERATION_H
#define FED_FEDERATION_H

#include <stdbool.h>
#include <sys/socket.h>

#include "homeserver/core/server_name.h"
#include "homeserver/http/http.h"

/* ---- routes ------------------------------------------------------------ */

/* Register every federation and key-server route, and install the X-Matrix
 * authenticator in the HTTP layer (hs_http_set_federation_auth).
 *
 * Routes flagged HS_FEDERATION require a valid X-Matrix signature unless
 * they also carry HS_FED_NOAUTH (the key endpoints, /openid/userinfo) or
 * HS_FED_AUTH_OPTIONAL (/version: checked only when sent, as Synapse does).
 * A handler of an authenticated route finds the calling server in r->origin,
 * already checked against federation_domain_whitelist. */
void fed_routes(hs_router *rt);

void fed_server_keys_routes(hs_router *rt);
void fed_version_routes(hs_router *rt);
void fed_key_query_routes(hs_router *rt);
void fed_admin_routes(hs_router *rt);

/* Stop the outbound HTTP thread and drop the caches (at shutdown, after the
 * HTTP listeners stopped). Safe to call when nothing was started. */
void fed_shutdown(void);

/* ---- our own keys ---------------------------------------------------------- */

/* How long our published key response stays valid (Synapse's default: 1 day). */
#define FED_KEY_VALIDITY_MS (24LL * 3600 * 1000)

/* Our own signed key response, as GET /_matrix/key/v2/server serves it. */
json_t *fed_own_server_keys(const hs_server *srv, hs_err *err);

/* ---- policy ---------------------------------------------------------------- */

/* May we federate with server_name at all? false when federation_domain_whitelist
 * is set and does not list it. Inbound handlers that learn a server name other
 * than r->origin (e.g. the sender of a PDU) check it here too. */
bool fed_domain_allowed(const cfg *c, const char *server_name);

/* May an outbound request (federation, and anything else that fetches URLs)
 * connect to this address? false when it is in ip_range_blacklist and not in
 * ip_range_whitelist. IPv4-mapped IPv6 addresses are judged as IPv4. */
bool fed_ip_allowed(const cfg *c, const struct sockaddr *sa);


/* ---- discovery --------------------------------------------------------------- */

/* Where to send requests for a server name. */
typedef struct fed_target {
    char tls_host[256];     /* host of the URL: TLS SNI and the name (or IP) the
                             * certificate must match; IPv6 without brackets */
    int port;
    char connect_host[256]; /* "" to connect to tls_host; else the SRV target
                             * (resolved with A/AAAA) */
    char host_header[300];  /* the Host header the spec asks for */
} fed_target;

/* Resolve server_name per the spec. The /.well-known result is cached
 * (Cache-Control/Expires within [5 min, 48 h], 24 h without them, errors
 * 1 h); the whole target is cached until the well-known or SRV answer
 * expires. Returns 0, or -1 with 400 M_INVALID_PARAM (not a server name) or
 * 502 M_UNKNOWN (SRV says the service is unavailable).
 *
 * For tests only: the environment variable PVYHS_FEDERATION_WELL_KNOWN_PORT
 * makes the /.well-known request go to that port instead of 443. */
int fed_resolve_server(hs_server *srv, const char *server_name, fed_target *t, hs_err *err);

/* ---- outbound requests ---------------------------------------------------- */

#define FED_DEFAULT_TIMEOUT_MS 60000L
#define FED_MAX_RESPONSE_BYTES (64L * 1024 * 1024)

typedef struct fed_request_opts {
    long timeout_ms;        /* the whole request; 0: FED_DEFAULT_TIMEOUT_MS */
    long max_response;      /* bytes; 0: FED_MAX_RESPONSE_BYTES */
    bool array_ok;          /* a 2xx answer may be a JSON array (the v1 APIs' [200, {…}]) */
} fed_request_opts;

/* Send a signed request to destination (a server name, never a URL).
 *
 * path_and_query is the request target exactly as sent and signed: it starts
 * with "/_matrix/" and is already percent-encoded (use fed_escape for path
 * segments and query values). body, if not NULL, is sent as canonical JSON
 * and signed as "content"; GET requests pass NULL.
 *
 * Returns 0 for a 2xx response whose body is a JSON object: *response holds
 * it (a new reference). Otherwise -1 with err:
 *   - the remote answered non-2xx: err carries its status, errcode and error
 *     (M_UNKNOWN if it sent none) and *response its parsed body, if JSON;
 *   - 403 M_FORBIDDEN: federation_domain_whitelist or the IP policy forbids it;
 *   - 502 M_UNKNOWN: no response (DNS, connect, TLS, timeout, bad JSON).
 * *status is the HTTP status, or 0 when no response arrived. response may be
 * NULL when the caller wants no body; *response is NULL whenever no body is
 * returned. */
int fed_request(hs_server *srv, const char *destination, const char *method,
                const char *path_and_query, const json_t *body, long *status, json_t **response,
                hs_err *err);
/* Whether a failed request's answer (status, and err as fed_request left
 * it) says the server does not know the endpoint: 405, or 404/400
 * M_UNRECOGNIZED (a bare 404 M_UNKNOWN too). A v2 API then falls back to
 * v1, as Synapse does. */
bool fed_endpoint_unknown(long status, const hs_err *err);

int fed_request_ex(hs_server *srv, const char *destination, const char *method,
                   const char *path_and_query, const json_t *body, const fed_request_opts *o,
                   long *status, json_t **response, hs_err *err);

/* Percent-encode s for a path segment or query value (everything but
 * RFC 3986 unreserved characters). malloc'd; NULL on OOM. */
char *fed_escape(const char *s);

/* ---- X-Matrix ------------------------------------------------------------- */

/* The Authorization header value for a request we send:
 *   X-Matrix origin="…",destination="…",key="ed25519:…",sig="…"
 * signing {method, uri, origin, destination[, content]}. malloc'd, or NULL
 * with err. */
char *fed_xmatrix_sign(const hs_server *srv, const char *destination, const char *method,
                       const char *uri, const json_t *content, hs_err *err);

/* Authenticate an inbound federation request: parse every X-Matrix header,
 * refuse a destination that is not our server_name and an origin outside
 * federation_domain_whitelist (403 M_FORBIDDEN), fetch the origin's key and
 * verify. On success sets r->origin (malloc'd, freed with the request).
 * Errors: 401 M_UNAUTHORIZED. The HTTP layer calls this itself. */
int fed_authenticate_request(hs_req *r, hs_err *err);

/* ---- remote server keys ------------------------------------------------------ */

/* The ed25519 public key key_id of server_name, valid until at least
 * min_valid_until_ts (0: any key we ever saw; otherwise, for an old key, its
 * expired_ts counts). Looks in PostgreSQL first, then asks the notaries in
 * trusted_key_servers, then the server itself; what is fetched is verified
 * (self-signed, right server_name, notary signature) and stored. A server is
 * asked again at most once every few seconds, so bad signatures can't make
 * us hammer it.
 * Returns 0 with pk, or -1: 401 M_UNAUTHORIZED (no such key, not valid long
 * enough, or unreachable), 403 M_FORBIDDEN (not in the domain whitelist). */
int fed_get_server_key(hs_server *srv, const char *server_name, const char *key_id,
                       long long min_valid_until_ts, unsigned char pk[32], hs_err *err);

/* Verify obj's signatures by server_name: every signature by a key we can
 * get (valid until at least min_valid_until_ts, see fed_get_server_key) must
 * verify and at least one must. Event checks pass origin_server_ts for room
 * versions 5 and later and 0 before; request auth passes now.
 * Returns 0, or -1 with 401 M_UNAUTHORIZED. */
int fed_verify_json_signed_by(hs_server *srv, const json_t *obj, const char *server_name,
                              long long min_valid_until_ts, hs_err *err);

/* Fetch server_name's keys from the server itself now (no cache, no
 * notary), verify and store them. The notary endpoints use it on a cache
 * miss. 0, or -1 with err (403 policy, 502 unreachable, 401 bad response). */
int fed_fetch_server_keys_direct(hs_server *srv, const char *server_name, hs_err *err);

/* ---- the sender: PDUs and EDUs to other servers (sender*.c, sql/014) ------------ */

/* Start the sender's threads (serve does, once listening): it follows the
 * local streams (room events, receipts, presence, device lists, to-device
 * messages for remote users) and delivers them per destination in
 * transactions of up to 50 PDUs and 100 EDUs, queued in PostgreSQL, with
 * Synapse's back-off (10 minutes doubling to a day) and catch-up. What
 * goes out: every accepted, non-outlier event sent by a local user, to the
 * servers joined to the room (and, for a membership event, the target's
 * server); m.typing, m.receipt (public read receipts), m.presence,
 * m.device_list_update, m.signing_key_update and m.direct_to_device EDUs.
 * Several processes: see sender.c (PVYHS_FEDERATION_SENDER_SHARD).
 * 0, or -1 if the threads could not start. */
int fed_sender_start(hs_server *srv);
/* Stop them (fed_shutdown does): transactions in flight are cut off and
 * stay queued for the next start. */
void fed_sender_stop(void);

/* Start the thread that fetches the full state of rooms joined with
 * partial state (serve does, with the sender): it resumes every resync a
 * stop interrupted. fed_shutdown stops it. 0, or -1. */
int fed_partial_state_start(hs_server *srv);

/* Look at the streams now rather than within 100 ms (after a COMMIT). */
void fed_sender_wake(void);

/* fed_sender_wake, and look at the queue itself too (not only the
 * streams): rows queued directly (fed_sender_enqueue_pdu) are otherwise
 * found only by the periodic rescan, a minute later. */
void fed_sender_wake_queued(void);

/* The local event event_id, just stored in the caller's transaction, is not
 * for the sender to send (Synapse's proactively_send = false): our join made
 * through a remote send_join, which that server sends to the room itself.
 * 0, or -1 with err. */
int fed_sender_mark_unsent(db_conn *c, const char *event_id, hs_err *err);

/* Queue an event that a remote user's server asked us to pass on (Synapse's
 * send_on_behalf_of: a join, leave or knock that came through our
 * send_join / send_leave / send_knock), to the servers joined to the room
 * but `except` (its origin), in the caller's transaction; then, after the
 * COMMIT, fed_sender_wake_queued(). Events of local users need no call: the sender
 * reads them from the events stream. 0, or -1 with err. */
int fed_sender_enqueue_pdu(db_conn *c, hs_server *srv, const char *event_id,
                           const char *room_id, long long stream_ordering, const char *except,
                           hs_err *err);

/* A local user's typing notification for the servers in the room. */
void fed_sender_typing(const char *room_id, const char *user_id, bool typing);

/* server_name sent us an authenticated request: if we were backing off from
 * it, it is evidently up, so its queue goes out now (as Synapse does). */
void fed_sender_remote_up(const char *server_name);

/* ---- queries: ours served to other servers, theirs asked for our clients ---- */

/* GET /_matrix/federation/v1/query/profile,
 * GET /_matrix/federation/v1/user/devices/{userId},
 * POST /_matrix/federation/v1/user/keys/{query,claim},
 * GET /_matrix/federation/v1/openid/userinfo. */
void fed_query_routes(hs_router *rt);
void fed_user_keys_routes(hs_router *rt);

/* Install the Policy Server asker of rooms/policy_server.h (POST
 * /_matrix/policy/v1/sign as srv); serve does, after fed_routes. */
void fed_policy_server_install(hs_server *srv);

/* Install the hooks of homeserver/client/fed_outbound.h (fed_routes does):
 * remote profiles and keys for our clients, sender wake-ups. */
void fed_outbound_install(void);

/* A remote user's profile (field NULL: all of it) from their server. 0 with
 * *out, or -1: the remote's 4xx error as it sent it, 502 M_UNKNOWN when it
 * could not be reached. */
int fed_remote_profile(hs_server *srv, const char *user_id, const char *field, json_t **out,
                       hs_err *err);
/* /user/keys/query and /user/keys/claim to several servers at once (see
 * fed_outbound.h for the shapes); answers for users not on the server
 * asked are ignored. */
void fed_remote_keys_query(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *device_keys, json_t *master_keys, json_t *self_signing_keys,
                           json_t *failures);
void fed_remote_keys_claim(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *one_time_keys, json_t *failures);

#endif
