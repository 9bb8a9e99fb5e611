/* remote_queries.c — asking other servers on behalf of our clients: a
 * remote user's profile (GET /profile/{userId}), remote device keys
 * (/keys/query) and one-time keys (/keys/claim). The client areas call these through the
 * hooks of homeserver/client/fed_outbound.h.
 *
 * Key queries go to every server concerned at once, one thread each, and
 * keep only what each server may speak for: its own users, those we asked
 * about, keys that name the user and device they are filed under. Nothing
 * is cached: the device lists our users track arrive as
 * m.device_list_update EDUs, and clients cache keys themselves. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/log.h"
#include "sender_internal.h"

/* How long a client waits for a profile from another server. */
#define QUERY_TIMEOUT_MS 15000L
/* At most this many servers are asked at the same time. */
#define MAX_PARALLEL 32

static const char *server_of(const char *id) {
    const char *colon = id ? strchr(id, ':') : NULL;
    return colon && hs_server_name_valid(colon + 1) ? colon + 1 : NULL;
}

/* A failed query as the Client-Server API shows it: the remote's 4xx as
 * it was, anything else (no answer, a 5xx) as 502. */
static int query_error(long status, hs_err *err) {
    if (status >= 400 && status < 500) return -1;
    if (err->status == 403 && status == 0) return -1; /* our own policy */
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return hs_err_set(err, 502, "M_UNKNOWN", "Failed to query the remote server: %s", why);
}

static int get_query(hs_server *srv, const char *server, const char *path, json_t **out,
                     hs_err *err) {
    fed_request_opts o = {.timeout_ms = QUERY_TIMEOUT_MS, .max_response = 1024 * 1024};
    long status = 0;
    json_t *resp = NULL;
    if (fed_request_ex(srv, server, "GET", path, NULL, &o, &status, &resp, err) < 0) {
        json_decref(resp);
        return query_error(status, err);
    }
    *out = resp;
    return 0;
}

int fed_remote_profile(hs_server *srv, const char *user_id, const char *field, json_t **out,
                       hs_err *err) {
    *out = NULL;
    const char *server = server_of(user_id);
    if (!server) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user id");
    char *u = fed_escape(user_id), *f = field ? fed_escape(field) : NULL, *path = NULL;
    int n = u && (!field || f) ? asprintf(&path, "/_matrix/federation/v1/query/profile?user_id=%s%s%s",
                                          u, f ? "&field=" : "", f ? f : "")
                               : -1;
    free(u), free(f);
    if (n < 0) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    json_t *resp = NULL;
    int rc = get_query(srv, server, path, &resp, err);
    free(path);
    if (rc < 0) return -1;
    if (field) { /* the spec: only that field; a server that sent more gets trimmed */
        json_t *v = json_object_get(resp, field);
        json_t *only = json_object();
        if (v && !json_is_null(v)) json_object_set(only, field, v);
        json_decref(resp);
        resp = only;
    }
    *out = resp;
    return 0;
}

/* ---- asking several servers at once -------------------------------------------------- */

typedef struct ask {
    hs_server *srv;
    const char *server;
    const char *path;
    json_t *body;        /* what is sent */
    long timeout_ms;
    json_t *resp;        /* what came back, on success */
    long status;
    hs_err err;
    int rc;
} ask;

static void *ask_one(void *arg) {
    ask *a = arg;
    fed_request_opts o = {.timeout_ms = a->timeout_ms};
    a->rc = fed_request_ex(a->srv, a->server, "POST", a->path, a->body, &o, &a->status, &a->resp,
                           &a->err);
    return NULL;
}

/* Run every ask, MAX_PARALLEL at a time. */
static void ask_all(ask *asks, size_t n) {
    for (size_t from = 0; from < n; from += MAX_PARALLEL) {
        size_t to = from + MAX_PARALLEL < n ? from + MAX_PARALLEL : n;
        pthread_t th[MAX_PARALLEL];
        bool started[MAX_PARALLEL] = {0};
        for (size_t i = from; i < to; i++)
            started[i - from] = pthread_create(&th[i - from], NULL, ask_one, &asks[i]) == 0;
        for (size_t i = from; i < to; i++) {
            if (started[i - from]) pthread_join(th[i - from], NULL);
            else ask_one(&asks[i]);
        }
    }
}

/* The spec's failures entry for a server that could not be asked. */
static void add_failure(json_t *failures, const ask *a) {
    long st = a->status >= 400 ? a->status : 503;
    json_object_set_new(failures, a->server,
                        json_pack("{s:I, s:s}", "status", (json_int_t)st, "message", a->err.msg));
    hs_info("federation: keys from %s: %s", a->server, a->err.msg);
}

/* Build one ask per server of by_server: body {key: by_server[server]}. */
static ask *make_asks(hs_server *srv, const json_t *by_server, const char *key, const char *path,
                      long timeout_ms, size_t *n) {
    *n = json_object_size(by_server);
    ask *asks = calloc(*n + 1, sizeof *asks);
    size_t i = 0;
    const char *server;
    json_t *users;
    json_object_foreach((json_t *)by_server, server, users) {
        asks[i] = (ask){.srv = srv, .server = server, .path = path,
                        .body = json_pack("{s:O}", key, users),
                        .timeout_ms = timeout_ms > 0 ? timeout_ms : 10000};
        i++;
    }
    return asks;
}

static void free_asks(ask *asks, size_t n) {
    for (size_t i = 0; i < n; i++) json_decref(asks[i].body), json_decref(asks[i].resp);
    free(asks);
}

/* Is user on server and among those asked? */
static bool asked(const ask *a, const json_t *asked_users, const char *user) {
    const char *s = server_of(user);
    return s && !strcmp(s, a->server) && json_object_get(asked_users, user);
}

/* The device keys one server sent, checked one by one. */
static void merge_device_keys(const ask *a, const json_t *asked_users, json_t *device_keys) {
    const char *user, *dev;
    json_t *devs, *k;
    json_object_foreach(json_object_get(a->resp, "device_keys"), user, devs) {
        if (!asked(a, asked_users, user) || !json_is_object(devs)) continue;
        json_t *mine = json_object_get(device_keys, user);
        if (!mine) json_object_set_new(device_keys, user, mine = json_object());
        json_object_foreach(devs, dev, k) {
            const char *ku = json_string_value(json_object_get(k, "user_id"));
            const char *kd = json_string_value(json_object_get(k, "device_id"));
            if (json_is_object(k) && ku && kd && !strcmp(ku, user) && !strcmp(kd, dev))
                json_object_set(mine, dev, k);
        }
    }
}

/* master_keys / self_signing_keys: a key filed under a user must be theirs. */
static void merge_cs_keys(const ask *a, const json_t *asked_users, const char *field, json_t *into) {
    const char *user;
    json_t *k;
    json_object_foreach(json_object_get(a->resp, field), user, k) {
        const char *ku = json_string_value(json_object_get(k, "user_id"));
        if (asked(a, asked_users, user) && json_is_object(k) && ku && !strcmp(ku, user))
            json_object_set(into, user, k);
    }
}

void fed_remote_keys_query(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *device_keys, json_t *master_keys, json_t *self_signing_keys,
                           json_t *failures) {
    size_t n;
    ask *asks = make_asks(srv, by_server, "device_keys", "/_matrix/federation/v1/user/keys/query",
                          timeout_ms, &n);
    ask_all(asks, n);
    for (size_t i = 0; i < n; i++) {
        ask *a = &asks[i];
        if (a->rc < 0) {
            add_failure(failures, a);
            continue;
        }
        const json_t *users = json_object_get(by_server, a->server);
        merge_device_keys(a, users, device_keys);
        merge_cs_keys(a, users, "master_keys", master_keys);
        merge_cs_keys(a, users, "self_signing_keys", self_signing_keys);
    }
    free_asks(asks, n);
}

void fed_remote_keys_claim(hs_server *srv, const json_t *by_server, long timeout_ms,
                           json_t *one_time_keys, json_t *failures) {
    size_t n;
    ask *asks = make_asks(srv, by_server, "one_time_keys", "/_matrix/federation/v1/user/keys/claim",
                          timeout_ms, &n);
    ask_all(asks, n);
    for (size_t i = 0; i < n; i++) {
        ask *a = &asks[i];
        if (a->rc < 0) {
            add_failure(failures, a);
            continue;
        }
        const json_t *users = json_object_get(by_server, a->server);
        const char *user, *dev;
        json_t *devs, *keys;
        json_object_foreach(json_object_get(a->resp, "one_time_keys"), user, devs) {
            if (!asked(a, users, user) || !json_is_object(devs)) continue;
            json_object_foreach(devs, dev, keys) {
                if (!json_is_object(keys) || !json_object_get(json_object_get(users, user), dev))
                    continue;
                json_t *mine = json_object_get(one_time_keys, user);
                if (!mine) json_object_set_new(one_time_keys, user, mine = json_object());
                json_object_set(mine, dev, keys);
            }
        }
    }
    free_asks(asks, n);
}
