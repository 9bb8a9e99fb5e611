/* transport_internal.h — what the transport files of federation/ share
 * (policy.c, discovery.c, http_client.c, request.c, xmatrix.c, keys.c), and
 * the pure parsers the unit tests and fuzz targets reach directly. */
#ifndef FED_TRANSPORT_INTERNAL_H
#define FED_TRANSPORT_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "federation.h"


/* ---- discovery.c (pure parts) ---- */

#define FED_WK_DEFAULT_MS (24LL * 3600 * 1000)
#define FED_WK_MIN_MS (5LL * 60 * 1000)
#define FED_WK_MAX_MS (48LL * 3600 * 1000)
#define FED_WK_ERROR_MS (3600LL * 1000)
#define FED_WK_MAX_BYTES (50 * 1024)

/* How long to cache a well-known answer given its Cache-Control and Expires
 * headers (either may be NULL), clamped to [FED_WK_MIN_MS, FED_WK_MAX_MS];
 * FED_WK_DEFAULT_MS without usable headers. Synapse's reading: no-store is
 * the minimum, max-age wins over Expires, a bad Expires date is "expired". */
long long fed_wellknown_cache_ms(const char *cache_control, const char *expires, long long now_ms);

/* The delegated server name of a well-known body: 0 with out filled, -1 if
 * the body is not a JSON object with a valid server name in "m.server". */
int fed_wellknown_parse(const char *body, size_t len, char *out, size_t outcap);

typedef struct fed_srv_record {
    unsigned priority, weight, port;
    char target[256]; /* without the trailing dot; "." means "no service" */
    unsigned ttl;
} fed_srv_record;

/* Parse the SRV answers of a DNS response (ns_initparse). Returns how many
 * records were stored (at most max), or -1 if the message is malformed. */
int fed_srv_parse(const unsigned char *msg, int len, fed_srv_record *out, int max);

/* RFC 2782 order: the lowest priority first; within one priority, a
 * weighted random pick (rnd in [0, 1) chooses). Returns the index of the
 * record to use, or -1 if n is 0. */
int fed_srv_pick(const fed_srv_record *recs, int n, double rnd);

/* Discovery with the network and caches taken out: for tests and fuzzing.
 * wk is the delegated name the well-known gave (NULL if none or invalid);
 * srv/srv_n the SRV answer for the name then asked ("_matrix-fed" first).
 * The lookup functions are called at most as the spec says. */
typedef struct fed_resolver_ops {
    /* 0 with the delegated name, -1 when there is none. */
    int (*well_known)(void *ctx, const char *host, char *out, size_t outcap, long long *expires);
    /* Number of records (<= max), 0 when none. */
    int (*srv)(void *ctx, const char *qname, fed_srv_record *out, int max);
    void *ctx;
} fed_resolver_ops;

/* *expires_ms gets how long the answer may be cached (LLONG_MAX when it
 * depends on nothing that expires). */
int fed_resolve_with(const fed_resolver_ops *ops, const char *server_name, fed_target *t,
                     long long now_ms, long long *expires_ms, hs_err *err);

/* ---- http_client.c: one libcurl multi handle on its own thread ---- */

typedef struct fed_http {
    /* In: set by the caller. */
    CURL *easy;                /* configured by fed_http_prepare, owned by the caller */
    const cfg *cfg;            /* IP policy for every connection attempt */
    long max_body;
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO list, freed by cleanup */
    /* Out: */
    char *body;                /* response body, NUL-terminated (malloc'd) */
    size_t body_len;
    char *cache_control, *expires; /* response headers kept for the well-known */
    bool too_large;            /* the response went over max_body */
    bool blocked;              /* every address tried was refused by the IP policy */
    int attempts, refused;     /* connection attempts, and how many the policy refused */
    CURLcode rc;
    char errbuf[CURL_ERROR_SIZE];
    /* Completion, signalled by the curl thread. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} fed_http;

/* Set up h->easy with the options every outbound request shares: TLS
 * verification (and custom CAs), the IP policy, buffers, HTTPS only, the
 * timeout. The caller adds URL, method, headers and body. -1 on OOM. */
int fed_http_prepare(fed_http *h, const cfg *c, long timeout_ms, long max_body);
/* Run it on the curl thread and wait for the end. Returns h->rc. */
CURLcode fed_http_perform(fed_http *h);
/* Free what fed_http_prepare and the transfer allocated (and h->easy). */
void fed_http_cleanup(fed_http *h);
/* A one-line reason for a failed transfer, for logs and err messages. */
const char *fed_http_strerror(const fed_http *h);
void fed_http_shutdown(void);

/* ---- discovery.c ---- */

void fed_discovery_reset(void);

/* ---- xmatrix.c ---- */

typedef struct fed_xmatrix {
    char origin[256];
    char destination[256];
    bool has_destination;
    char key[128];
    char sig[128];
} fed_xmatrix;

/* Parse one Authorization header value with the X-Matrix scheme, per the
 * spec (RFC 9110 auth-params; quoted or token values; unquoted values may
 * hold ':'). 0, or -1 with 401 M_UNAUTHORIZED. */
int fed_xmatrix_parse(const char *header, fed_xmatrix *out, hs_err *err);

/* The JSON an X-Matrix signature covers (new reference). content may be NULL. */
json_t *fed_xmatrix_request_json(const char *method, const char *uri, const char *origin,
                                 const char *destination, const json_t *content);

/* ---- keys.c ---- */

/* Check a key response (GET /_matrix/key/v2/server or one entry of a notary
 * answer) for server_name: shape, server_name, at least one good signature
 * by one of its verify_keys and none bad. Pure: for tests. 0, or -1 with
 * 401 M_UNAUTHORIZED. */
int fed_key_response_check(const json_t *resp, const char *server_name, hs_err *err);

/* One entry of a notary's answer about server_name: for that server,
 * signed by the notary with a key trusted_key_servers gives for it (when it
 * gives any; otherwise TLS vouches for the notary), and a good key response
 * (fed_key_response_check). Pure: for tests. 0, or -1 with 401. */
int fed_notary_entry_check(const cfg_key_server *ks, const json_t *entry, const char *server_name,
                           hs_err *err);

/* A stored response for server_name (the server's own signatures only), or
 * NULL when none; *fetched_ts / *valid_until_ts describe it. */
json_t *fed_keys_stored_response(hs_server *srv, const char *server_name, long long *fetched_ts,
                                 long long *valid_until_ts, hs_err *err);

/* Spec: a key's validity is capped at 7 days after we fetched it. */
#define FED_KEY_MAX_VALIDITY_MS (7LL * 24 * 3600 * 1000)

#endif
