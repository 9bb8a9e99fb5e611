/* receipts.c — POST /rooms/{roomId}/receipt/{receiptType}/{eventId},
 * POST /rooms/{roomId}/read_markers, and the receipts /sync reads.
 *
 * The user must be joined and the event must be in the room. A receipt (and
 * the fully read marker) only moves forward: one for an event earlier in the
 * room's stream order than the stored one is accepted and ignored. Private
 * receipts wake only their owner's /sync; public ones the whole room's. */
#include "receipts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account_data.h"
#include "client.h"
#include "homeserver/core/clock.h"
#include "homeserver/db/streams.h"
#include "jsonb.h"
#include "notifier.h"
#include "presence.h"
#include "room_access.h"

/* Relations are followed this far up, as the spec recommends for threads. */
#define MAX_RELATION_HOPS 3

/* ---- storing ---- */

typedef struct receipt_job {
    const char *room_id, *type, *user_id, *thread_id, *event_id, *data;
    long long pos;
    long changed;
} receipt_job;

static int receipt_txn(db_conn *c, void *arg, hs_err *err) {
    /* Updates only when the new event comes later in the room's stream order
     * (an old event that is gone no longer holds the receipt back). */
    static db_stmt up = DB_STMT(
        "INSERT INTO receipts (stream_id, room_id, receipt_type, user_id, thread_id, event_id, data)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)"
        " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE"
        " SET event_id = EXCLUDED.event_id, data = EXCLUDED.data, stream_id = EXCLUDED.stream_id"
        " WHERE coalesce((SELECT stream_ordering FROM events WHERE event_id = receipts.event_id),"
        "   -9223372036854775808) < (SELECT stream_ordering FROM events WHERE event_id = $6)");
    receipt_job *j = arg;
    char pos[24];
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_RECEIPTS, err)) < 0) return -1;
    snprintf(pos, sizeof pos, "%lld", j->pos);
    const char *p[] = {pos, j->room_id, j->type, j->user_id, j->thread_id, j->event_id, j->data};
    j->changed = db_exec(c, &up, 7, p, err);
    return j->changed < 0 ? -1 : 0;
}

static int store_receipt(hs_server *srv, receipt_job *j, hs_err *err) {
    int rc = db_txn(srv->db, receipt_txn, j, err);
    if (j->pos > 0) db_stream_done(DB_STREAM_RECEIPTS, j->pos);
    if (rc < 0 || j->changed <= 0) return rc;
    if (!strcmp(j->type, "m.read.private")) hs_notify_users((const char *const[]){j->user_id}, 1);
    else hs_notify_room(j->room_id);
    return 0;
}

static int send_receipt(hs_server *srv, const char *room_id, const char *type,
                        const char *user_id, const char *event_id, const char *thread_id,
                        hs_err *err) {
    json_t *data = json_pack("{s:I}", "ts", (json_int_t)hs_now_ms());
    if (thread_id) json_object_set_new(data, "thread_id", json_string(thread_id));
    char *text = client_jsonb_dump(data, err);
    json_decref(data);
    if (!text) return -1;
    receipt_job j = {room_id, type, user_id, thread_id ? thread_id : "", event_id, text, 0, 0};
    int rc = store_receipt(srv, &j, err);
    free(text);
    return rc;
}

/* The fully read marker is the room's m.fully_read account data. */
static int set_fully_read(hs_server *srv, const char *room_id, const char *user_id,
                          const char *event_id, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO account_data (stream_id, user_id, room_id, type, content)"
        " VALUES ($1, $2, $3, 'm.fully_read', jsonb_build_object('event_id', $4::text))"
        " ON CONFLICT (user_id, room_id, type) DO UPDATE"
        " SET content = EXCLUDED.content, stream_id = EXCLUDED.stream_id"
        " WHERE coalesce((SELECT stream_ordering FROM events"
        "   WHERE event_id = account_data.content ->> 'event_id'), -9223372036854775808)"
        " < (SELECT stream_ordering FROM events WHERE event_id = $4)");
    const char *p[] = {user_id, room_id, event_id};
    return client_account_data_write(srv, user_id, &up, 3, p, err) < 0 ? -1 : 0;
}

/* ---- checking ---- */

static int check_event_in_room(db_conn *c, const char *room_id, const char *event_id,
                               hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT 1 FROM events WHERE event_id = $1 AND room_id = $2"
        " AND stream_ordering IS NOT NULL AND rejected_reason IS NULL");
    PGresult *r = db_run(c, &q, 2, (const char *[]){event_id, room_id}, err);
    if (!r) return -1;
    int n = PQntuples(r);
    PQclear(r);
    return n ? 0 : hs_err_set(err, 404, "M_NOT_FOUND", "Event %s not found in room %s", event_id, room_id);
}

/* The relation (m.relates_to rel_type and event_id) of a stored event of
 * the room, into the buffers; false when it has none or is not stored. */
static bool relation_of(db_conn *c, const char *room_id, const char *event_id, char *rel,
                        size_t rn, char *target, size_t tn, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT convert_from(json, 'UTF8')::json #>> '{content,m.relates_to,rel_type}',"
        " convert_from(json, 'UTF8')::json #>> '{content,m.relates_to,event_id}'"
        " FROM events WHERE event_id = $1 AND room_id = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){event_id, room_id}, err);
    bool has = r && PQntuples(r) && !PQgetisnull(r, 0, 0) && !PQgetisnull(r, 0, 1);
    if (has) {
        snprintf(rel, rn, "%s", PQgetvalue(r, 0, 0));
        snprintf(target, tn, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return has;
}

/* Is the event where a receipt for thread_id may point? For "main": it is
 * in no thread (no m.thread relation up its chain). For a thread root X:
 * the top of its relation chain is X (X itself, an event of X's thread, or
 * something related to those). Synapse also asks that X have a thread;
 * a receipt on a lone root is harmless, so we don't look for one. */
static int check_thread(db_conn *c, const char *room_id, const char *event_id,
                        const char *thread_id, hs_err *err) {
    char cur[256], rel[64], target[256];
    bool in_thread = false;
    snprintf(cur, sizeof cur, "%s", event_id);
    for (int hop = 0; hop < MAX_RELATION_HOPS; hop++) {
        if (!relation_of(c, room_id, cur, rel, sizeof rel, target, sizeof target, err)) break;
        if (!strcmp(rel, "m.thread")) in_thread = true;
        snprintf(cur, sizeof cur, "%s", target);
    }
    if (err->status >= 500) return -1;
    bool ok = !strcmp(thread_id, "main") ? !in_thread : !strcmp(cur, thread_id);
    if (!ok)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "event_id %s is not related to thread %s",
                          event_id, thread_id);
    return 0;
}

static bool known_type(const char *t) {
    return !strcmp(t, "m.read") || !strcmp(t, "m.read.private") || !strcmp(t, "m.fully_read");
}

/* The user joined, every named event in the room, the thread (if any)
 * right; then presence notes the activity. */
static int check_request(hs_req *r, const char *const *events, size_t n, const char *thread_id,
                         hs_err *err) {
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = client_require_joined(c, r->params[0], r->user_id, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = check_event_in_room(c, r->params[0], events[i], err);
    if (rc == 0 && thread_id) rc = check_thread(c, r->params[0], events[0], thread_id, err);
    hs_err ignored = {0};
    if (rc == 0) client_presence_bump_active(c, r->srv, r->user_id, &ignored);
    db_release(r->srv->db, c);
    return rc;
}

/* ---- the endpoints ---- */

static int post_receipt(hs_req *r, json_t **out, hs_err *err) {
    const char *room_id = r->params[0], *type = r->params[1], *event_id = r->params[2];
    if (room_id[0] != '!' || event_id[0] != '$')
        return hs_err_set(err, 400, "M_INVALID_PARAM", "A valid room ID and event ID must be specified");
    if (!known_type(type))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "Receipt type must be m.read, m.read.private or m.fully_read");
    const json_t *tid = json_object_get(r->json, "thread_id");
    const char *thread_id = json_string_value(tid);
    if (tid && (!thread_id || !*thread_id))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "thread_id field must be a non-empty string");
    if (tid && !strcmp(type, "m.fully_read"))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "thread_id is not compatible with m.fully_read receipts.");
    if (check_request(r, (const char *const[]){event_id}, 1, thread_id, err) < 0) return -1;
    int rc = !strcmp(type, "m.fully_read")
                 ? set_fully_read(r->srv, room_id, r->user_id, event_id, err)
                 : send_receipt(r->srv, room_id, type, r->user_id, event_id, thread_id, err);
    if (rc < 0) return -1;
    *out = json_object();
    return 200;
}

static int post_read_markers(hs_req *r, json_t **out, hs_err *err) {
    static const char *const types[] = {"m.fully_read", "m.read", "m.read.private"};
    const char *ids[3];
    const char *events[3];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        const json_t *v = json_object_get(r->json, types[i]);
        ids[i] = json_string_value(v);
        if (v && !json_is_null(v) && !json_is_string(v))
            return hs_err_set(err, 400, "M_BAD_JSON", "'%s' must be an event ID", types[i]);
        if (ids[i] && !*ids[i]) ids[i] = NULL; /* "" is "not given", as in Synapse */
        if (ids[i]) events[n++] = ids[i];
    }
    if (check_request(r, events, n, NULL, err) < 0) return -1;
    const char *room_id = r->params[0];
    if (ids[0] && set_fully_read(r->srv, room_id, r->user_id, ids[0], err) < 0) return -1;
    for (int i = 1; i < 3; i++)
        if (ids[i] && send_receipt(r->srv, room_id, types[i], r->user_id, ids[i], NULL, err) < 0)
            return -1;
    *out = json_object();
    return 200;
}

/* ---- receipts of other servers' users ---- */

int client_receipt_store_remote(hs_server *srv, const char *room_id, const char *type,
                                const char *user_id, const char *event_id, const json_t *data,
                                hs_err *err) {
    if (strcmp(type, "m.read") != 0)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Only m.read receipts cross servers");
    /* What we keep of data is what clients are shown: ts, and the thread. */
    const json_t *ts = json_object_get(data, "ts");
    const char *thread_id = json_string_value(json_object_get(data, "thread_id"));
    json_t *kept = json_pack("{s:I}", "ts", (json_int_t)(json_is_integer(ts) ? json_integer_value(ts)
                                                                             : hs_now_ms()));
    if (thread_id && *thread_id) json_object_set_new(kept, "thread_id", json_string(thread_id));
    else thread_id = NULL;
    char *text = client_jsonb_dump(kept, err);
    json_decref(kept);
    if (!text) return -1;
    receipt_job j = {room_id, type, user_id, thread_id ? thread_id : "", event_id, text, 0, 0};
    int rc = store_receipt(srv, &j, err);
    free(text);
    return rc;
}

/* ---- /sync ---- */

int client_receipts_sync(db_conn *c, const char *user_id, const char *const *room_ids, size_t n,
                         long long from, long long to, json_t *by_room, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT room_id, receipt_type, user_id, event_id, data::text FROM receipts"
        " WHERE room_id = ANY ($1::text[]) AND stream_id > $2 AND stream_id <= $3"
        " AND (receipt_type <> 'm.read.private' OR user_id = $4) ORDER BY stream_id");
    if (n == 0) return 0;
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    char *rooms = db_text_array(room_ids, n);
    PGresult *r = db_run(c, &q, 4, (const char *[]){rooms, f, t, user_id}, err);
    free(rooms);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *room = PQgetvalue(r, i, 0);
        json_t *ev = json_object_get(by_room, room);
        if (!ev) {
            ev = json_pack("{s:s, s:{}}", "type", "m.receipt", "content");
            json_object_set_new(by_room, room, ev);
        }
        json_t *content = json_object_get(ev, "content");
        const char *event_id = PQgetvalue(r, i, 3), *type = PQgetvalue(r, i, 1);
        json_t *per_event = json_object_get(content, event_id);
        if (!per_event) json_object_set_new(content, event_id, per_event = json_object());
        json_t *per_type = json_object_get(per_event, type);
        if (!per_type) json_object_set_new(per_event, type, per_type = json_object());
        json_t *data = client_jsonb_load(PQgetvalue(r, i, 4));
        if (data) json_object_set_new(per_type, PQgetvalue(r, i, 2), data);
    }
    PQclear(r);
    return 0;
}

void client_receipts_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}",
             post_receipt, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/read_markers", post_read_markers,
             HS_AUTH | HS_R0);
}
