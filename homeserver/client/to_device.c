/* to_device.c — PUT /sendToDevice/{eventType}/{txnId} and the to_device
 * section of /sync.
 *
 * A request is idempotent per (sending device, event type, txnId): the
 * transaction ID is recorded in the same database transaction as the
 * messages, so a retry, even a concurrent one, stores nothing twice. All
 * messages of one request share one DB_STREAM_TO_DEVICE position. A device
 * ID "*" means every device the user has when the message is sent; messages
 * to unknown local devices are dropped (Synapse). Messages to users of other
 * servers are queued per destination in device_federation_outbox as
 * m.direct_to_device EDU contents for the federation sender, which does not
 * exist yet. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2ee_internal.h"
#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/db/streams.h"
#include "notifier.h"

/* Synapse's MAX_TO_DEVICE_CONTENT_SIZE: what still fits in one federation EDU. */
#define TO_DEVICE_MAX_CONTENT 65536

typedef struct send_job {
    hs_req *r;
    const char *type, *txn;
    const json_t *messages;
    long long pos;
    bool duplicate;
} send_job;

/* Record the transaction ID; false when this request was already handled. */
static int claim_txn(db_conn *c, send_job *j, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO to_device_txns (user_id, device_id, event_type, txn_id, created_ts)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING");
    /* A client retries within minutes; a day of transaction IDs is plenty
     * (Synapse keeps them 30 minutes, in memory). */
    static db_stmt old = DB_STMT(
        "DELETE FROM to_device_txns WHERE user_id = $1 AND device_id = $2 AND created_ts < $3");
    char now[24], day_ago[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    snprintf(day_ago, sizeof day_ago, "%lld", hs_now_ms() - 24LL * 3600 * 1000);
    if (db_exec(c, &old, 3, (const char *[]){j->r->user_id, j->r->device_id, day_ago}, err) < 0)
        return -1;
    long n = db_exec(c, &ins, 5,
                     (const char *[]){j->r->user_id, j->r->device_id, j->type, j->txn, now}, err);
    if (n < 0) return -1;
    j->duplicate = n == 0;
    return 0;
}

/* Explicit devices first, then "*" for the devices not named: a device gets
 * at most one message per request (the spec: one message per device). */
static int deliver_local(db_conn *c, send_job *j, const char *uid, const json_t *by_dev,
                         hs_err *err) {
    static db_stmt one = DB_STMT(
        "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
        " SELECT user_id, device_id, $3, $4 FROM devices WHERE user_id = $1 AND device_id = $2"
        " ON CONFLICT DO NOTHING");
    static db_stmt all = DB_STMT(
        "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
        " SELECT user_id, device_id, $2, $3 FROM devices WHERE user_id = $1"
        " ON CONFLICT DO NOTHING");
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    for (int pass = 0; pass < 2; pass++) {
        const char *did;
        json_t *content;
        json_object_foreach((json_t *)by_dev, did, content) {
            bool star = !strcmp(did, "*");
            if (star != (pass == 1)) continue;
            json_t *ev = json_pack("{s:s, s:s, s:O}", "sender", j->r->user_id, "type", j->type,
                                   "content", content);
            char *text = hs_json_canonical(ev, NULL, err);
            json_decref(ev);
            if (!text) return -1;
            long n = star ? db_exec(c, &all, 3, (const char *[]){uid, pos, text}, err)
                          : db_exec(c, &one, 4, (const char *[]){uid, did, pos, text}, err);
            free(text);
            if (n < 0) return -1;
        }
    }
    return 0;
}

/* One m.direct_to_device EDU content per destination server. */
static int queue_remote(db_conn *c, send_job *j, json_t *by_server, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO device_federation_outbox (destination, stream_id, edu_json, queued_ts)"
        " VALUES ($1, $2, $3, $4)");
    char pos[24], now[24];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *server;
    json_t *msgs;
    json_object_foreach(by_server, server, msgs) {
        unsigned char rnd[12];
        char mid[2 * sizeof rnd + 1];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(mid, sizeof mid, rnd, sizeof rnd);
        json_t *edu = json_pack("{s:s, s:s, s:s, s:O}", "sender", j->r->user_id, "type", j->type,
                                "message_id", mid, "messages", msgs);
        char *text = hs_json_canonical(edu, NULL, err);
        json_decref(edu);
        long n = text ? db_exec(c, &ins, 4, (const char *[]){server, pos, text, now}, err) : -1;
        free(text);
        if (n < 0) return -1;
    }
    return 0;
}

static int send_txn(db_conn *c, void *arg, hs_err *err) {
    send_job *j = arg;
    if (claim_txn(c, j, err) < 0) return -1;
    if (j->duplicate) return 0;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_TO_DEVICE, err)) < 0) return -1;
    json_t *remote = json_object();
    const char *uid;
    json_t *by_dev;
    int rc = 0;
    json_object_foreach((json_t *)j->messages, uid, by_dev) {
        const char *server = e2ee_user_server(uid);
        if (!server) continue; /* Synapse ignores invalid user IDs */
        if (e2ee_is_local(j->r, uid)) {
            if ((rc = deliver_local(c, j, uid, by_dev, err)) < 0) break;
            continue;
        }
        json_t *s = json_object_get(remote, server);
        if (!s) json_object_set_new(remote, server, s = json_object());
        json_object_set(s, uid, by_dev);
    }
    if (rc == 0) rc = queue_remote(c, j, remote, err);
    json_decref(remote);
    return rc;
}

/* messages: user ID → device ID → content object, each content small enough
 * to travel over federation (Synapse's 413 M_TOO_LARGE). */
static int check_messages(const json_t *m, hs_err *err) {
    if (!m) return hs_err_set(err, 400, "M_MISSING_PARAM", "Missing params: ['messages']");
    if (!json_is_object(m)) return hs_err_set(err, 400, "M_BAD_JSON", "'messages' must be an object");
    const char *u, *d;
    json_t *devs, *content;
    json_object_foreach((json_t *)m, u, devs) {
        if (!json_is_object(devs))
            return hs_err_set(err, 400, "M_BAD_JSON", "'messages.%s' must be an object", u);
        json_object_foreach(devs, d, content) {
            if (!json_is_object(content))
                return hs_err_set(err, 400, "M_BAD_JSON", "the message for %s %s must be an object",
                                  u, d);
            size_t len = 0;
            char *canon = hs_json_canonical(content, &len, err);
            if (!canon) return -1;
            free(canon);
            if (len > TO_DEVICE_MAX_CONTENT)
                return hs_err_set(err, 413, "M_TOO_LARGE",
                                  "To-device message for %s:%s is too large to send (%zu > %d)", u,
                                  d, len, TO_DEVICE_MAX_CONTENT);
        }
    }
    return 0;
}

static int put_send_to_device(hs_req *r, json_t **out, hs_err *err) {
    send_job j = {.r = r, .type = r->params[0], .txn = r->params[1]};
    j.messages = json_object_get(r->json, "messages");
    if (check_messages(j.messages, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = e2ee_txn(c, send_txn, &j, err);
    db_release(r->srv->db, c);
    if (j.pos > 0) db_stream_done(DB_STREAM_TO_DEVICE, j.pos);
    if (rc < 0) return -1;
    if (!j.duplicate) {
        /* Wake the local recipients' waiting syncs. */
        size_t n = 0;
        const char **users = calloc(json_object_size(j.messages) + 1, sizeof *users);
        const char *uid;
        json_t *v;
        json_object_foreach((json_t *)j.messages, uid, v) if (e2ee_is_local(r, uid)) users[n++] = uid;
        if (n) hs_notify_users(users, n);
        free(users);
    }
    *out = json_object();
    return 200;
}

/* ---- the to_device section of /sync -------------------------------------- */

/* One round trip: the acknowledged messages go, the next ones come. The
 * client presenting `since` has the messages up to it: they were in the
 * response that handed it out. */
static db_stmt inbox = DB_STMT(
    "WITH d AS (DELETE FROM device_inbox WHERE user_id = $1 AND device_id = $2"
    "  AND stream_id <= $3 AND $3::bigint > 0)"
    " SELECT stream_id, message_json FROM device_inbox WHERE user_id = $1 AND device_id = $2"
    " AND stream_id > $3 AND stream_id <= $4 ORDER BY stream_id LIMIT $5");

typedef struct inbox_params {
    char since[24], to[24], limit[16];
} inbox_params;

static void inbox_params_of(long long since, long long to, inbox_params *ip, int limit) {
    snprintf(ip->since, sizeof ip->since, "%lld", since);
    snprintf(ip->to, sizeof ip->to, "%lld", to);
    snprintf(ip->limit, sizeof ip->limit, "%d", limit);
}

void client_to_device_prefetch(db_conn *c, const char *user_id, const char *device_id,
                               long long since, long long to) {
    inbox_params ip;
    inbox_params_of(since, to, &ip, E2EE_TO_DEVICE_SYNC_LIMIT);
    hs_err ignored = {0};
    db_prefetch(c, &inbox, 5, (const char *[]){user_id, device_id, ip.since, ip.to, ip.limit},
                0, &ignored);
}

int client_to_device_sync(db_conn *c, const char *user_id, const char *device_id,
                          long long since, long long to, json_t *events, long long *next,
                          hs_err *err) {
    return client_to_device_sync_limit(c, user_id, device_id, since, to,
                                       E2EE_TO_DEVICE_SYNC_LIMIT, events, next, err);
}

int client_to_device_sync_limit(db_conn *c, const char *user_id, const char *device_id,
                                long long since, long long to, int limit, json_t *events,
                                long long *next, hs_err *err) {
    inbox_params ip;
    inbox_params_of(since, to, &ip, limit);
    PGresult *r = db_run(c, &inbox, 5, (const char *[]){user_id, device_id, ip.since, ip.to,
                                                       ip.limit}, err);
    if (!r) return -1;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        json_t *ev = e2ee_parse_stored(PQgetvalue(r, i, 1));
        if (ev) json_array_append_new(events, ev);
    }
    /* Cut by the limit: the next token points just after the last message
     * given, so the rest arrives in the next sync. Every message of a
     * position is one per device, so no position is split. */
    *next = n > 0 && n == limit ? atoll(PQgetvalue(r, n - 1, 0)) : to;
    PQclear(r);
    return 0;
}

void e2ee_to_device_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/client/v3/sendToDevice/{eventType}/{txnId}", put_send_to_device,
             HS_AUTH | HS_R0 | HS_GUEST);
}
