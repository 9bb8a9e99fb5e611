/* api_call.c — the admin commands' way into the Client-Server API
 * (api_call.h): whatever changes a room is an event, sent as a local user
 * through the same handlers a client reaches. With the server running (it
 * holds the data directory's lock) the request goes to it over HTTP — it
 * alone may write events, since stream positions and waiting /syncs live in
 * its memory — with an access token made for the acting user for this one
 * request, on a device of its own that is deleted right after. With the
 * server stopped the same handlers run in this process. */
#include "api_call.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/client.h"
#include "homeserver/core/clock.h"
#include "homeserver/db/streams.h"

char *admin_api_escape(const char *s) {
    /* libcurl's percent-encoding: all but A-Z a-z 0-9 - . _ ~ */
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}

/* The first client listener, preferring plain HTTP, reached over loopback
 * when it listens on every address. */
static int pick_listener(admin_api *a) {
    const cfg_listener *best = NULL;
    for (size_t i = 0; i < a->cfg->n_listeners; i++) {
        const cfg_listener *l = &a->cfg->listeners[i];
        if (l->res_client && (!best || (best->tls && !l->tls))) best = l;
    }
    if (!best) return -1;
    const char *host = best->bind_addresses.n ? best->bind_addresses.v[0] : "127.0.0.1";
    if (!*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "*")) host = "127.0.0.1";
    if (!strcmp(host, "::")) host = "::1";
    bool v6 = strchr(host, ':') != NULL;
    snprintf(a->base, sizeof a->base, "%s://%s%s%s:%d", best->tls ? "https" : "http", v6 ? "[" : "",
             host, v6 ? "]" : "", best->port);
    a->tls = best->tls;
    return 0;
}

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_data(char *d, size_t size, size_t n, void *arg) {
    buf *b = arg;
    char *p = realloc(b->p, b->n + size * n + 1);
    if (!p) return 0;
    memcpy(p + b->n, d, size * n);
    b->p = p;
    b->n += size * n;
    b->p[b->n] = 0;
    return size * n;
}

/* A token for user_id on a device made for this request. */
static char *temp_token(admin_api *a, const char *user_id, char *device, size_t n, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts)"
        " VALUES ($1, $2, 'pvyhs command line', $3)");
    unsigned char raw[6];
    randombytes_buf(raw, sizeof raw);
    snprintf(device, n, "PVYHSCLI%02X%02X%02X%02X%02X%02X", raw[0], raw[1], raw[2], raw[3],
             raw[4], raw[5]);
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    db_conn *c = db_acquire(a->db, err);
    char *tok = NULL;
    if (c && db_exec(c, &ins, 3, (const char *[]){user_id, device, now}, err) >= 0)
        tok = hs_auth_issue_token(c, user_id, device, hs_now_ms() + 120000, err);
    db_release(a->db, c);
    return tok;
}

static void drop_device(admin_api *a, const char *user_id, const char *device) {
    static db_stmt del = DB_STMT("DELETE FROM devices WHERE user_id = $1 AND device_id = $2");
    hs_err err = {0};
    db_conn *c = db_acquire(a->db, &err);
    if (c) db_exec(c, &del, 2, (const char *[]){user_id, device}, &err);
    db_release(a->db, c);
}

static int call_http(admin_api *a, const char *as, const char *method, const char *path,
                     const json_t *body, json_t **resp, hs_err *err) {
    char device[64];
    char *tok = temp_token(a, as, device, sizeof device, err);
    if (!tok) return -1;
    char url[1200], auth[256];
    snprintf(url, sizeof url, "%s%s", a->base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    char *data = body ? json_dumps(body, JSON_COMPACT) : NULL;
    buf b = {0};
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (data) curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (a->tls) { /* our own server, on this machine: its certificate names its public host */
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hd);
    free(data);
    sodium_memzero(tok, strlen(tok));
    free(tok);
    drop_device(a, as, device);
    int rc = (int)status;
    if (cc != CURLE_OK) {
        rc = hs_err_set(err, 502, "M_UNKNOWN", "the server holds the data directory but does not "
                                              "answer on %s: %s", a->base, curl_easy_strerror(cc));
    } else {
        *resp = b.p ? json_loads(b.p, 0, NULL) : NULL;
        if (!*resp) *resp = json_object();
    }
    free(b.p);
    return rc;
}

static int user_is_admin(admin_api *a, const char *user_id) {
    static db_stmt q = DB_STMT("SELECT admin FROM users WHERE user_id = $1");
    hs_err err = {0};
    db_conn *c = db_acquire(a->db, &err);
    PGresult *r = c ? db_run(c, &q, 1, (const char *[]){user_id}, &err) : NULL;
    int admin = r && PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    db_release(a->db, c);
    return admin;
}

/* The same request, handled in this process by the server's own handler. */
static int call_local(admin_api *a, const char *as, const char *method, const char *path,
                      const json_t *body, json_t **resp, hs_err *err) {
    hs_req r = {.srv = &a->srv, .method = method, .path = path, .body = "", .json = (json_t *)body};
    int flags = 0, status = 0;
    hs_handler h = hs_router_match(a->srv.router, method, path, HS_RES_CLIENT, &r, &flags, &status);
    if (!h) return hs_err_set(err, status, "M_UNRECOGNIZED", "no route for %s %s", method, path);
    r.user_id = strdup(as);
    r.device_id = strdup("PVYHSCLI");
    r.is_admin = user_is_admin(a, as);
    json_t *out = NULL;
    int rc = h(&r, &out, err);
    *resp = out ? out : json_object();
    for (int i = 0; i < r.n_params; i++) free(r.params[i]);
    free(r.user_id);
    free(r.device_id);
    if (r.ctx && r.ctx_free) r.ctx_free(r.ctx);
    if (rc < 0) {
        json_decref(*resp);
        *resp = json_pack("{s:s, s:s}", "errcode", err->errcode, "error", err->msg);
        rc = err->status;
    }
    return rc;
}

int admin_api_call(admin_api *a, const char *as, const char *method, const char *path,
                   const json_t *body, json_t **resp, hs_err *err) {
    *resp = NULL;
    return a->remote ? call_http(a, as, method, path, body, resp, err)
                     : call_local(a, as, method, path, body, resp, err);
}

/* The default acting user of commands that need an admin. */
char *admin_oldest_admin(db_conn *c, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT user_id FROM users WHERE admin AND NOT deactivated AND NOT is_guest"
        " ORDER BY created_ts, user_id LIMIT 1");
    PGresult *r = db_run(c, &q, 0, NULL, err);
    char *u = r && PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (r && !u) hs_err_set(err, 404, "M_NOT_FOUND", "there is no server admin: name one "
                                                   "with --as");
    PQclear(r);
    return u;
}

int admin_api_open(admin_api *a, admin_runtime *rt, hs_err *err) {
    a->cfg = rt->cfg;
    a->db = rt->db;
    a->remote = rt->lock_fd < 0; /* `serve` holds the lock */
    if (a->remote) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (pick_listener(a) < 0)
            return hs_err_set(err, 500, "M_UNKNOWN", "the config has no client listener");
        return 0;
    }
    /* The handlers may hold a connection while taking another: a pool of
     * their own, larger than the command's single connection. */
    const char *conninfo = rt->pg ? db_embedded_conninfo(rt->pg) : rt->cfg->db_dsn;
    a->srv.cfg = rt->cfg;
    if (!(a->own_pool = a->srv.db = db_pool_new(conninfo, 1, 4, 0, err))) return -1;
    a->db = a->srv.db;
    if (hs_signing_key_load(rt->cfg->signing_key_path, &a->srv.key, err) < 0) return -1;
    if (db_streams_init(rt->db, err) < 0) return -1;
    a->srv.router = hs_router_new();
    client_routes(a->srv.router);
    return 0;
}

void admin_api_close(admin_api *a) {
    if (a->remote) curl_global_cleanup();
    if (a->srv.router) hs_router_free(a->srv.router);
    db_pool_free(a->own_pool);
}

