/* server.c — libmicrohttpd listeners and the life of one request.
 *
 * Each listener address gets a daemon with an epoll thread pool and
 * suspend/resume enabled, so long-polling requests hold a connection, not a
 * thread. We bind the sockets ourselves to report "port in use" plainly. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth_cache.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "http.h"
#include "http_internal.h"

struct hs_listener {
    struct MHD_Daemon *d;
    int fd;
    int resources;
    hs_server *srv;
    char *tls_cert, *tls_key; /* PEM kept alive for the daemon */
};

/* Per-connection request state between libmicrohttpd's callbacks. */
typedef struct req_state {
    hs_req r;
    hs_handler parked;  /* the handler to run again on resume */
    int flags;          /* the matched route's hs_route_flags */
    char *raw_path; /* the path as sent, before libmicrohttpd decodes it */
    char *raw_uri;  /* path and query as sent: X-Matrix signs it (federation) */
    char *buf;
    size_t len, cap;
    bool too_large;
    /* HS_STREAM_BODY routes (see hs_req.on_chunk): */
    hs_handler stream_h; /* set: the body streams to this handler */
    bool refused;        /* the error in refusal goes out once the body is drained */
    bool answered;       /* a response is queued already */
    hs_err refusal;
} req_state;

static void add_cors(struct MHD_Response *resp) {
    /* The spec's CORS headers, on every response, for Element Web and Hydrogen. */
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                            "GET, HEAD, POST, PUT, DELETE, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            "X-Requested-With, Content-Type, Authorization");
}

int hs_http_send_json(struct MHD_Connection *c, int status, json_t *body) {
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (!s) s = strdup("{}");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    add_cors(resp);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Sends body (a reference it takes) as canonical JSON; see HS_CANONICAL_JSON. */
static int send_canonical(struct MHD_Connection *c, int status, json_t *body) {
    hs_err err = {0};
    size_t len = 0;
    char *s = hs_json_canonical_ex(body, NULL, HS_JSON_CANON_ANY_INT, &len, &err);
    if (!s) return hs_http_send_json(c, status, body); /* floats: no canonical form */
    json_decref(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, s, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    add_cors(resp);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

json_t *hs_http_error_body(const hs_err *err) {
    json_t *o = json_pack("{s:s, s:s}", "errcode", err->errcode[0] ? err->errcode : "M_UNKNOWN",
                          "error", err->msg);
    if (!strcmp(err->errcode, "M_UNKNOWN_TOKEN"))
        json_object_set_new(o, "soft_logout", json_boolean(strstr(err->msg, "expired") != NULL));
    /* Spec, account locking: the client keeps its session for the unlock. */
    if (!strcmp(err->errcode, "M_USER_LOCKED")) json_object_set_new(o, "soft_logout", json_true());
    if (err->retry_after_ms > 0)
        json_object_set_new(o, "retry_after_ms", json_integer(err->retry_after_ms));
    /* Spec (make_join, and Synapse's answer to a join through it): the
     * version the server does not support. */
    if (!strcmp(err->errcode, "M_INCOMPATIBLE_ROOM_VERSION") && err->room_version[0])
        json_object_set_new(o, "room_version", json_string(err->room_version));
    return o;
}

static int send_error(struct MHD_Connection *c, hs_err *err) {
    int status = err->status ? err->status : 500;
    json_t *body = hs_http_error_body(err);
    if (err->retry_after_ms <= 0) return hs_http_send_json(c, status, body);
    /* v1.10: the Retry-After header (seconds) beside retry_after_ms. */
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
    char secs[24];
    snprintf(secs, sizeof secs, "%lld", (err->retry_after_ms + 999) / 1000);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Retry-After", secs);
    add_cors(resp);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The client's address: the first X-Forwarded-For hop when a listener trusts
 * its proxy (x_forwarded), else the peer. Kept in memory only (rate limits)
 * unless the admin turns on track_client_ips. */
void hs_req_client_ip(hs_req *r, char *out, size_t n) {
    out[0] = 0;
    const cfg *c = r->srv->cfg;
    bool trust = false;
    for (size_t i = 0; i < c->n_listeners; i++) trust |= c->listeners[i].x_forwarded;
    const char *xff = trust ? hs_req_header(r, "X-Forwarded-For") : NULL;
    if (xff) {
        size_t len = strcspn(xff, ", ");
        snprintf(out, n, "%.*s", (int)(len < 64 ? len : 64), xff);
        return;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

const char *hs_req_query(hs_req *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *hs_req_header(hs_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static int prepare_body(hs_req *r, int flags, hs_err *err) {
    if (flags & HS_RAW_BODY) return 0;
    if (r->body_len == 0) {
        /* An empty body counts as {} so POSTs that take no parameters work. */
        r->json = json_object();
        return 0;
    }
    r->json = hs_json_parse(r->body, r->body_len, err);
    if (!r->json) return -1;
    if (!json_is_object(r->json))
        return hs_err_set(err, 400, "M_BAD_JSON", "the request body must be a JSON object");
    return 0;
}

static int run_handler(struct MHD_Connection *c, req_state *st, hs_handler h, hs_err *errp);

/* ---- X-Matrix on federation routes (federation/xmatrix.c registers it) ----
 * The federation layer sits above this one, so it hands us its
 * authenticator. It runs after the body is parsed: the signature covers it. */
static hs_fed_auth_fn fed_auth_cb;

void hs_http_set_federation_auth(hs_fed_auth_fn fn) { fed_auth_cb = fn; }

static bool fed_auth_needed(hs_req *r, int flags) {
    if (!(flags & HS_FEDERATION) || (flags & HS_FED_NOAUTH)) return false;
    const char *a = hs_req_header(r, "Authorization");
    return !(flags & HS_FED_AUTH_OPTIONAL) || (a && !strncasecmp(a, "X-Matrix", 8));
}

static int fed_authenticate(hs_req *r, hs_err *err) {
    if (!fed_auth_cb) return hs_err_set(err, 401, "M_UNAUTHORIZED", "federation is not available");
    return fed_auth_cb(r, err);
}
/* ---- end X-Matrix ---- */

static int dispatch(hs_listener *l, struct MHD_Connection *c, req_state *st) {
    hs_req *r = &st->r;
    hs_err err = {0};
    if (!strcmp(r->method, "OPTIONS")) return hs_http_send_json(c, 200, json_object());
    int flags = 0, status = 404;
    hs_handler h = hs_router_match(l->srv->router, r->method, r->path, l->resources, r, &flags,
                                   &status);
    if (!h) {
        hs_err_set(&err, status, "M_UNRECOGNIZED",
                   status == 405 ? "Unrecognized request: method not allowed" : "Unrecognized request");
        return send_error(c, &err);
    }
    if (st->too_large) {
        hs_err_set(&err, 413, "M_TOO_LARGE", "the request body is larger than %d bytes",
                   HS_MAX_JSON_BODY);
        return send_error(c, &err);
    }
    st->flags = flags;
    if (hs_auth_route(r, flags, &err) < 0) return send_error(c, &err);
    if (prepare_body(r, flags, &err) < 0) return send_error(c, &err);
    if (fed_auth_needed(r, flags) && fed_authenticate(r, &err) < 0) return send_error(c, &err);
    return run_handler(c, st, h, &err);
}

void hs_req_suspend(hs_req *r) { MHD_suspend_connection(r->conn); }

void hs_req_resume(hs_req *r) { MHD_resume_connection(r->conn); }

static int run_handler(struct MHD_Connection *c, req_state *st, hs_handler h, hs_err *errp) {
    hs_req *r = &st->r;
    hs_err err = *errp;
    json_t *out = NULL;
    unsigned long auth_gen = hs_auth_cache_generation();
    int code = h(r, &out, &err);
    /* A handler that ended tokens forgot the cache inside its transaction;
     * forgetting again now that it committed drops whatever a concurrent
     * request cached from the rows as they were before. */
    if (hs_auth_cache_generation() != auth_gen) {
        hs_auth_cache_forget_all();
        hs_auth_cache_announce(r->srv->db); /* and the other processes' caches */
    }
    if (code == HS_SUSPENDED) {
        st->parked = h;
        return MHD_YES;
    }
    st->parked = NULL;
    if (r->custom) {
        add_cors(r->custom);
        enum MHD_Result rc = MHD_queue_response(c, (unsigned)code, r->custom);
        MHD_destroy_response(r->custom);
        json_decref(out);
        return rc;
    }
    if (code < 0) {
        json_decref(out);
        if (err.status >= 500) hs_error("%s %s: %s", r->method, r->path, err.msg);
        return send_error(c, &err);
    }
    if (st->flags & HS_CANONICAL_JSON && out) return send_canonical(c, code, out);
    return hs_http_send_json(c, code, out ? out : json_object());
}

/* libmicrohttpd percent-decodes the URL before the request callback sees it,
 * which would turn an encoded '/' inside a room alias into a path separator.
 * This callback sees the URI as sent; its result becomes the request state. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c) {
    (void)c;
    hs_listener *l = cls;
    req_state *st = calloc(1, sizeof *st);
    st->raw_path = strndup(uri, strcspn(uri, "?"));
    st->raw_uri = strdup(uri);
    st->r.uri = st->raw_uri;
    st->r.srv = l->srv;
    st->r.path = st->raw_path;
    atomic_fetch_add(&l->srv->inflight, 1);
    return st;
}

/* Streaming (HS_STREAM_BODY): a POST or PUT is routed and authenticated as
 * soon as its headers are in, so the handler can refuse it (413 from the
 * Content-Length, 401, 403) before any of the body is read. Other routes are
 * left to dispatch() once their body is buffered. */
static enum MHD_Result stream_begin(hs_listener *l, struct MHD_Connection *c, req_state *st) {
    hs_req *r = &st->r;
    int flags = 0, status;
    hs_handler h = hs_router_match(l->srv->router, r->method, r->path, l->resources, r, &flags,
                                   &status);
    if (h && !(flags & HS_STREAM_BODY)) { /* dispatch() matches again */
        for (int i = 0; i < r->n_params; i++) free(r->params[i]), r->params[i] = NULL;
        r->n_params = 0;
    }
    if (!h || !(flags & HS_STREAM_BODY)) return MHD_YES;
    st->stream_h = h;
    int code = -1;
    if (hs_auth_route(r, flags, &st->refusal) == 0) {
        json_t *out = NULL;
        r->stream_begin = true;
        code = h(r, &out, &st->refusal);
        r->stream_begin = false;
        json_decref(out);
    }
    if (code == HS_STREAM_ACCEPT && r->on_chunk) return MHD_YES;
    if (code != -1) hs_err_set(&st->refusal, 500, "M_UNKNOWN", "upload handler did not start");
    st->refused = true;
    const char *expect = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Expect");
    if (!expect || strcasecmp(expect, "100-continue")) return MHD_YES; /* drain, then answer */
    st->answered = true; /* the client waits for our word before sending the body */
    return send_error(c, &st->refusal) == MHD_YES ? MHD_YES : MHD_NO;
}

static enum MHD_Result stream_chunk(req_state *st, const char *data, size_t n) {
    if (st->refused || st->answered) return MHD_YES; /* dropped */
    if (st->r.on_chunk(&st->r, data, n, &st->refusal) < 0) st->refused = true;
    return MHD_YES;
}

static enum MHD_Result stream_end(struct MHD_Connection *c, req_state *st) {
    if (st->answered) return MHD_YES;
    st->answered = true;
    if (st->refused) return send_error(c, &st->refusal) == MHD_YES ? MHD_YES : MHD_NO;
    hs_err err = {0};
    return run_handler(c, st, st->stream_h, &err) == MHD_YES ? MHD_YES : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    hs_listener *l = cls;
    (void)url;
    req_state *st = *con_cls;
    if (!st->r.conn) {
        st->r.conn = c;
        st->r.method = method;
        if (!strcmp(method, "POST") || !strcmp(method, "PUT")) return stream_begin(l, c, st);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->stream_h) return stream_chunk(st, upload, n);
        if (st->too_large || st->len + n > HS_MAX_JSON_BODY) {
            st->too_large = true; /* keep reading so the 413 reaches the client */
            return MHD_YES;
        }
        if (st->len + n + 1 > st->cap) {
            st->cap = (st->len + n + 1) * 2;
            st->buf = realloc(st->buf, st->cap);
        }
        memcpy(st->buf + st->len, upload, n);
        st->len += n;
        st->buf[st->len] = 0;
        return MHD_YES;
    }
    if (st->parked) { /* resumed after hs_req_suspend */
        hs_err err = {0};
        return run_handler(c, st, st->parked, &err) == MHD_YES ? MHD_YES : MHD_NO;
    }
    if (st->stream_h) return stream_end(c, st);
    st->r.body = st->buf ? st->buf : "";
    st->r.body_len = st->len;
    return dispatch(l, c, st) == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)c, (void)toe;
    hs_listener *l = cls;
    req_state *st = *con_cls;
    if (!st) return;
    for (int i = 0; i < st->r.n_params; i++) free(st->r.params[i]);
    json_decref(st->r.json);
    if (st->r.ctx_free) st->r.ctx_free(st->r.ctx);
    free(st->r.user_id);
    free(st->r.device_id);
    free(st->r.origin);
    free(st->buf);
    free(st->raw_path);
    free(st->raw_uri);
    free(st);
    *con_cls = NULL;
    atomic_fetch_sub(&l->srv->inflight, 1);
}

static int bind_socket(const char *addr, int port, hs_err *err) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int family;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        family = s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        len = sizeof *s6;
    } else if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        family = s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof *s4;
    } else {
        return hs_err_set(err, 500, "M_UNKNOWN", "bind address '%s' is not an IP address", addr);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return hs_err_set(err, 500, "M_UNKNOWN", "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* "::" then means IPv6 only, so "0.0.0.0" can be bound beside it. */
    if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            return hs_err_set(err, 500, "M_UNKNOWN",
                              "port %d on %s is already in use (another pvyhs or program listens "
                              "there)", port, addr);
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot listen on %s port %d: %s", addr, port,
                          strerror(e));
    }
    return fd;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) == (size_t)n) s[n] = 0;
    else free(s), s = NULL;
    fclose(f);
    return s;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n') buf[--n] = 0;
    hs_debug("libmicrohttpd: %s", buf);
}

/* As many connections as descriptors allow (each waiting /sync holds one),
 * keeping some for PostgreSQL, files and the listeners. */
static unsigned connection_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY) return 20000;
    return rl.rlim_cur > 1256 ? (unsigned)(rl.rlim_cur - 256) : 1000;
}

/* Handlers block on PostgreSQL, so with one thread per core a slow query
 * stalls every connection on that thread and at most ncpu transactions are in
 * flight. Four per core keeps the cores and PostgreSQL busy; at most half the
 * database pool, so a client and a federation listener together never hold
 * every connection while one of them waits for another. */
static unsigned worker_threads(const hs_server *srv) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long n = 4 * (ncpu > 0 ? ncpu : 2);
    if (n > srv->cfg->db_cp_max / 2) n = srv->cfg->db_cp_max / 2;
    if (n < 2) n = 2;
    return n > 64 ? 64 : (unsigned)n;
}

static int start_one(hs_server *srv, hs_listener *l, const cfg_listener *cl, const char *addr,
                     hs_err *err) {
    l->srv = srv;
    l->resources = (cl->res_client ? HS_RES_CLIENT : 0) | (cl->res_federation ? HS_RES_FEDERATION : 0);
    l->fd = bind_socket(addr, cl->port, err);
    if (l->fd < 0) return -1;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (cl->tls) {
        l->tls_cert = slurp(srv->cfg->tls_certificate_path);
        l->tls_key = slurp(srv->cfg->tls_private_key_path);
        if (!l->tls_cert || !l->tls_key)
            return hs_err_set(err, 500, "M_UNKNOWN", "cannot read the TLS certificate or key");
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls_opts[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, l->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, l->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    l->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, l, MHD_OPTION_LISTEN_SOCKET, l->fd,
        MHD_OPTION_THREAD_POOL_SIZE, worker_threads(srv),
        /* Headers and the read buffer of each connection: 16 KiB instead of
         * libmicrohttpd's 32 KiB halves the memory of 10,000 parked /syncs
         * (bodies are copied out as they arrive, so only headers need room). */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)120, MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_ARRAY, cl->tls ? tls_opts : (struct MHD_OptionItem[]){{MHD_OPTION_END, 0, NULL}},
        MHD_OPTION_END);
    if (!l->d) {
        close(l->fd);
        l->fd = -1;
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot start the HTTP listener on %s port %d",
                          addr, cl->port);
    }
    hs_info("listening on %s%s%s:%d (%s%s%s)", strchr(addr, ':') ? "[" : "", addr,
            strchr(addr, ':') ? "]" : "", cl->port, cl->tls ? "https" : "http",
            cl->res_client ? ", client" : "", cl->res_federation ? ", federation" : "");
    return 0;
}

int hs_http_start(hs_server *srv, hs_err *err) {
    size_t total = 0;
    for (size_t i = 0; i < srv->cfg->n_listeners; i++)
        total += srv->cfg->listeners[i].bind_addresses.n;
    srv->listeners = calloc(total ? total : 1, sizeof *srv->listeners);
    for (size_t i = 0; i < srv->cfg->n_listeners; i++) {
        const cfg_listener *cl = &srv->cfg->listeners[i];
        for (size_t a = 0; a < cl->bind_addresses.n; a++) {
            hs_listener *l = &srv->listeners[srv->n_listeners];
            l->fd = -1;
            if (start_one(srv, l, cl, cl->bind_addresses.v[a], err) < 0) {
                free(l->tls_cert), free(l->tls_key);
                hs_http_stop(srv, 0);
                return -1;
            }
            srv->n_listeners++;
        }
    }
    return 0;
}

void hs_http_stop(hs_server *srv, int grace_ms) {
    for (size_t i = 0; i < srv->n_listeners; i++) {
        int fd = MHD_quiesce_daemon(srv->listeners[i].d);
        if (fd >= 0) close(fd);
    }
    /* Let requests already being handled finish and reach their clients. */
    for (int waited = 0; waited < grace_ms && atomic_load(&srv->inflight) > 0; waited += 10) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (size_t i = 0; i < srv->n_listeners; i++) {
        MHD_stop_daemon(srv->listeners[i].d);
        free(srv->listeners[i].tls_cert);
        free(srv->listeners[i].tls_key);
    }
    free(srv->listeners);
    srv->listeners = NULL;
    srv->n_listeners = 0;
}
