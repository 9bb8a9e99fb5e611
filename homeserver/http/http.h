/* http.h — the HTTP core: listeners (libmicrohttpd), the router, requests,
 * JSON responses with the spec's errors, CORS and access-token auth.
 *
 * A handler gets a parsed request and either returns an HTTP status with a
 * JSON body, or -1 with an hs_err that becomes {"errcode", "error"}. */
#ifndef HS_HTTP_H
#define HS_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config/config.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/err.h"
#include "homeserver/core/signing.h"
#include "homeserver/db/db.h"

#define HS_MAX_PARAMS 8
#define HS_MAX_JSON_BODY (8 * 1024 * 1024)

typedef struct hs_router hs_router;
typedef struct hs_listener hs_listener;

/* Everything a handler may need, one per process. */
typedef struct hs_server {
    cfg *cfg;
    db_pool *db;
    hs_signing_key key;
    hs_router *router;
    hs_listener *listeners;
    size_t n_listeners;
    atomic_long inflight; /* requests being handled right now */
    atomic_bool stopping; /* shutting down: long-polls answer at once */
    long long started_ts;
} hs_server;

typedef struct hs_req {
    hs_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;                /* as received, not decoded */
    const char *uri;                 /* path and query as received (what X-Matrix signs) */
    char *params[HS_MAX_PARAMS];     /* percent-decoded {templates} of the route */
    int n_params;
    const char *body;                /* raw body (NUL-terminated), may be empty */
    size_t body_len;
    json_t *json;                    /* parsed object body, for routes that take JSON */
    /* Filled by access-token auth: */
    char *user_id;
    char *device_id;
    bool is_admin, is_guest;
    bool is_suspended; /* an admin suspended the account: it may read, not act */
    bool is_locked;    /* an admin locked it: only HS_ALLOW_LOCKED routes run */
    /* Filled by X-Matrix auth on federation routes: the calling server. */
    char *origin;
    /* A handler answering with something other than JSON sets this. */
    struct MHD_Response *custom;
    /* Long-polling: a handler may park the request (hs_req_suspend) and
     * return HS_SUSPENDED; after hs_req_resume the same handler runs again
     * with its ctx, which is freed with ctx_free when the request ends. */
    void *ctx;
    void (*ctx_free)(void *ctx);
    /* Streamed bodies (routes flagged HS_STREAM_BODY, for uploads of any size
     * in constant memory): the handler first runs with stream_begin set, once
     * the headers are in (auth done) and before any of the body. It refuses
     * with -1 and err (sent at once if the client asked "Expect: 100-continue",
     * else after the rest of the body is read and dropped, so the client sees
     * it), or accepts by setting on_chunk (and ctx/ctx_free) and returning
     * HS_STREAM_ACCEPT. on_chunk gets each piece of the body as it arrives;
     * -1 refuses the rest the same way. After the last piece the handler runs
     * again, stream_begin false and r->body empty, and answers as usual. */
    bool stream_begin;
    int (*on_chunk)(struct hs_req *r, const char *data, size_t len, hs_err *err);
} hs_req;

#define HS_SUSPENDED 0 /* handler return value: parked, answer later */
#define HS_STREAM_ACCEPT 100 /* handler return value with stream_begin: send the body */

/* Returns the HTTP status and stores a new reference in *out, or -1 with err. */
typedef int (*hs_handler)(hs_req *r, json_t **out, hs_err *err);

enum hs_route_flags {
    HS_AUTH = 1 << 0,           /* access token required */
    HS_AUTH_OPTIONAL = 1 << 1,  /* authenticate when a token is given */
    HS_R0 = 1 << 2,             /* also answered under /_matrix/client/r0/… */
    HS_RAW_BODY = 1 << 3,       /* the body is not JSON (uploads) */
    HS_FEDERATION = 1 << 4,     /* served on listeners with the federation resource */
    HS_ANY_LISTENER = 1 << 5,   /* served everywhere (/health, /.well-known) */
    HS_STREAM_BODY = 1 << 6,    /* POST/PUT body handed over in pieces: see hs_req.on_chunk */
    /* HS_FEDERATION routes require X-Matrix auth (the callback below) unless: */
    HS_FED_NOAUTH = 1 << 7,        /* never authenticated (key server, openid) */
    HS_FED_AUTH_OPTIONAL = 1 << 8, /* authenticated only when X-Matrix is sent */
    /* Guest accounts may call it (the spec's Guest Access module, and what
     * Synapse allows with allow_guest=True). Every other authenticated
     * route answers a guest's token with 403 M_GUEST_ACCESS_FORBIDDEN. */
    HS_GUEST = 1 << 9,
    /* A locked account (spec: account locking) gets 401 M_USER_LOCKED with
     * soft_logout on every authenticated route but these (logout, and
     * /versions as Synapse allows). */
    HS_ALLOW_LOCKED = 1 << 10,
    /* A suspended account (spec: account suspension) gets 403
     * M_USER_SUSPENDED here: routes that only act (join, invite, createRoom,
     * profile changes, uploads …). Routes where it depends on the request
     * (sending events: a redaction of one's own event or leaving a room is
     * allowed) check r->is_suspended themselves (client/suspension.h). */
    HS_REFUSE_SUSPENDED = 1 << 11,
    /* The 200 body goes out as canonical JSON (sorted keys, compact). A
     * self-signed response must: verifiers such as gomatrixserverlib (and
     * Complement) check the signature against the bytes as received with
     * "signatures" cut out, not against a re-encoding. */
    HS_CANONICAL_JSON = 1 << 12,
};

/* X-Matrix authentication, provided by the federation layer (which the HTTP
 * layer must not depend on): sets r->origin, or returns -1 with err. Without
 * a callback, authenticated federation routes answer 401. */
typedef int (*hs_fed_auth_fn)(hs_req *r, hs_err *err);
void hs_http_set_federation_auth(hs_fed_auth_fn fn);

hs_router *hs_router_new(void);
void hs_router_free(hs_router *rt);

/* Register method + path template ("/_matrix/client/v3/rooms/{roomId}/join");
 * a final "{name?}" segment may be empty or absent. */
void hs_route(hs_router *rt, const char *method, const char *tmpl, hs_handler h, int flags);

enum hs_resources { HS_RES_CLIENT = 1, HS_RES_FEDERATION = 2 };

/* Route a request on a listener serving `resources`. Returns the handler and fills params / *flags; NULL with
 * *status 404 (no such path) or 405 (path known, method not). */
hs_handler hs_router_match(const hs_router *rt, const char *method, const char *path,
                           int resources, hs_req *r, int *flags, int *status);

/* Start a daemon per listener address in cfg. */
int hs_http_start(hs_server *srv, hs_err *err);
/* Stop accepting, wait up to grace_ms for in-flight requests, stop. */
void hs_http_stop(hs_server *srv, int grace_ms);

/* Park the request (only from inside its handler, which then returns
 * HS_SUSPENDED). No thread waits for it. */
void hs_req_suspend(hs_req *r);
/* Wake a parked request from any thread: its handler runs again. */
void hs_req_resume(hs_req *r);

/* A query-string parameter of the request, or NULL. */
const char *hs_req_query(hs_req *r, const char *key);
/* The client's address (the first X-Forwarded-For hop behind a trusted
 * proxy), "" when unknown. */
void hs_req_client_ip(hs_req *r, char *out, size_t n);

/* A request header, or NULL. */
const char *hs_req_header(hs_req *r, const char *name);

/* Authenticate the request's access token (Authorization: Bearer, or the
 * legacy access_token query parameter). 0, or -1 with 401 M_MISSING_TOKEN /
 * M_UNKNOWN_TOKEN. It does not refuse a locked account (the route does,
 * unless HS_ALLOW_LOCKED). */
int hs_auth_request(hs_req *r, hs_err *err);

/* The user an access token authenticates, if it is a guest's (a live
 * token of a guest account that is not deactivated): the user ID (malloc'd),
 * NULL when it is not (err untouched), NULL with err on a database error. */
char *hs_auth_guest_of_token(db_conn *c, const char *token, hs_err *err);

/* Create a fresh access token for (user_id, device_id): returns the token
 * (malloc'd) and stores only its hash. Runs on the caller's connection. */
char *hs_auth_issue_token(db_conn *c, const char *user_id, const char *device_id,
                          long long valid_until_ts, hs_err *err);

#endif
