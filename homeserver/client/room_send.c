/* room_send.c — sending a local event, committing it, waking its readers. */
#include "room_send.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "homeserver/db/group_commit.h"
#include "homeserver/db/streams.h"
#include "channels.h"
#include "e2ee.h"
#include "fed_outbound.h"
#include "homeserver/core/log.h"
#include "notifier.h"
#include "push_actions.h"
#include "remote_rooms.h"
#include "relations.h"
#include "upgrade_follow.h"
#include "rooms/state_lookup.h"

typedef struct send_job {
    hs_server *srv;
    const room_version *v;
    const char *room_id;
    const json_t *proto;
    long long pos;
    room_event *out;
    const char *device_id, *txn_id; /* idempotency, when txn_id is set */
    char *existing;
    bool duplicate; /* out is the current state event proto repeats: nothing was sent */
    room_event *result; /* a batched send's answer (run's), with err */
    hs_err err;
} send_job;

/* A state event that repeats the current one (same type, state key, sender
 * and content) is not sent: the current one is the answer, as Synapse's
 * deduplicate_state_event does (Complement relies on it: a room already
 * "shared" gets no second m.room.history_visibility), and for memberships
 * its update_membership (joining twice, an unchanged profile). The current
 * event, or NULL (err set only on failure). */
static room_event *repeated_state(db_conn *c, const char *room_id, const json_t *proto,
                                  hs_err *err) {
    const char *type = json_string_value(json_object_get(proto, "type"));
    const char *sk = json_string_value(json_object_get(proto, "state_key"));
    const char *sender = json_string_value(json_object_get(proto, "sender"));
    if (!type || !sk || !sender || !strcmp(type, "m.room.create"))
        return NULL;
    hs_err e = {0};
    room_event *cur = room_store_current_event(c, room_id, type, sk, &e);
    if (!cur && e.status != 404) *err = e;
    if (cur && (cur->rejected || strcmp(cur->sender, sender) != 0 ||
                !json_equal(cur->content, json_object_get(proto, "content"))))
        room_event_free(cur), cur = NULL;
    if (!cur) return NULL;
    /* A membership repeats what the state already says of its target, as
     * Synapse's update_membership finds (no auth check there: the current
     * state includes the event, so the rules would judge a leave by the
     * leave itself). */
    if (!strcmp(type, "m.room.member")) return cur;
    /* Other state must still be allowed (the sender may have left or lost
     * power since): the auth rules judge the current event as they would
     * judge its repeat, whose type, key, sender and content are the same.
     * Refused, it is sent, to be refused with the rule that fails. */
    room_lookup l = {.c = c, .room_id = room_id, .current = true};
    hs_err deny = {0};
    int ok = room_auth_check(cur, room_lookup_get, &l, &deny);
    if (l.failed) *err = l.err, ok = -1;
    room_lookup_clear(&l);
    if (ok < 0) room_event_free(cur), cur = NULL;
    return cur;
}

/* Transaction IDs: the first request of a (user, device, room, txn) records
 * its event with it, as a write that travels with the COMMIT. A repeat finds
 * that row once its own send failed (find_txn), whatever made it fail: the
 * row's key (a concurrent duplicate waits on it, then fails at COMMIT), or a
 * change since (the sender left the room). So the common case, a new txn ID,
 * costs no round trip. */
static int record_txn(db_conn *c, send_job *j, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO event_txn_ids (user_id, device_id, txn_id, room_id, event_id, created_ts)"
        " VALUES ($1, $2, $3, $4, $5, $6)");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    const char *sender = json_string_value(json_object_get(j->proto, "sender"));
    const char *p[] = {sender, j->device_id, j->txn_id, j->room_id, j->out->event_id, now};
    return db_defer(c, &ins, 6, p, NULL, NULL, err);
}

/* The same for a batch of sends, in one statement. */
static int record_txns(db_conn *c, send_job *const *jobs, size_t n, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO event_txn_ids (user_id, device_id, txn_id, room_id, event_id, created_ts)"
        " SELECT u.*, $6::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],"
        "  $5::text[]) AS u");
    const char **col[5];
    char *arr[5] = {0};
    int rc = -1;
    for (int k = 0; k < 5; k++) col[k] = calloc(n ? n : 1, sizeof(char *));
    for (int k = 0; k < 5; k++)
        if (!col[k]) goto done;
    size_t m = 0; /* a legacy POST /send has no transaction ID */
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i]->txn_id) continue;
        col[0][m] = json_string_value(json_object_get(jobs[i]->proto, "sender"));
        col[1][m] = jobs[i]->device_id, col[2][m] = jobs[i]->txn_id;
        col[3][m] = jobs[i]->room_id, col[4][m++] = jobs[i]->out->event_id;
    }
    rc = 0;
    if (m == 0) goto done;
    rc = -1;
    for (int k = 0; k < 5; k++)
        if (!(arr[k] = db_text_array(col[k], m))) goto done;
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    rc = db_defer(c, &ins, 6, (const char *[]){arr[0], arr[1], arr[2], arr[3], arr[4], now},
                  NULL, NULL, err);
done:
    if (rc < 0 && !err->status) hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    for (int k = 0; k < 5; k++) free(col[k]), free(arr[k]);
    return rc;
}

static char *find_txn(send_job *j) {
    static db_stmt get = DB_STMT(
        "SELECT event_id FROM event_txn_ids"
        " WHERE user_id = $1 AND device_id = $2 AND txn_id = $3 AND room_id = $4");
    const char *sender = json_string_value(json_object_get(j->proto, "sender"));
    const char *p[] = {sender, j->device_id, j->txn_id, j->room_id};
    hs_err err = {0};
    db_conn *c = db_acquire(j->srv->db, &err);
    PGresult *r = c ? db_run(c, &get, 4, p, &err) : NULL;
    char *found = r && PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (r) PQclear(r);
    db_release(j->srv->db, c);
    return found;
}

static bool remote_invite(const hs_server *srv, const room_event *ev) {
    const char *colon = ev->state_key ? strchr(ev->state_key, ':') : NULL;
    const client_remote_rooms *h = client_remote_rooms_get();
    return h && h->invite && ev->membership && !strcmp(ev->membership, "invite") && colon &&
           strcmp(colon + 1, srv->cfg->server_name) != 0;
}

int client_room_invite_remote(db_conn *c, hs_server *srv, const room_event *ev, hs_err *err) {
    return remote_invite(srv, ev) ? client_remote_rooms_get()->invite(c, srv, ev, err) : 0;
}

static int send_txn(db_conn *c, void *arg, hs_err *err) {
    send_job *j = arg;
    room_event_free(j->out);
    j->out = NULL;
    if (!j->v) {
        hs_err e = {0};
        j->out = repeated_state(c, j->room_id, j->proto, &e);
        if (e.status) return *err = e, -1;
        if ((j->duplicate = j->out != NULL)) return 0;
    }
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_EVENTS, err)) < 0) return -1;
    /* This server's own rules for its clients (channels.h): encryption stays on,
     * invite blocking. */
    if (client_channel_check_send(c, j->srv, j->room_id, j->proto, err) < 0) return -1;
    /* The room's lock, then the push recipients read under it, go with the
     * transaction's first round trip (room_send_local finds the lock sent). */
    const char *type = json_string_value(json_object_get(j->proto, "type"));
    if (j->room_id && type && strcmp(type, "m.room.create") != 0) {
        room_store_prefetch_head(c, j->room_id);
        client_push_prefetch(c, j->srv, j->room_id, j->proto);
    }
    j->out = room_send_local(c, j->v, j->room_id, j->proto, j->srv->cfg->server_name,
                             &j->srv->key, j->pos, err);
    if (!j->out) return -1;
    /* Relations are checked once the auth rules admitted the event (so a
     * refusal tells outsiders nothing); then indexed with its push actions. */
    if (client_relations_check_local(c, j->out, err) < 0 ||
        client_room_event_stored(c, j->srv, j->out, err) < 0)
        return -1;
    /* An invite of another server's user is signed by that server before it
     * commits; its refusal is the inviter's answer (remote_rooms.h). */
    if (client_room_invite_remote(c, j->srv, j->out, err) < 0) return -1;
    return j->txn_id ? record_txn(c, j, err) : 0;
}

/* A committed send: its position is readable, then its readers wake and
 * the other servers in the room get it. */
static void announce(send_job *j) {
    if (!j->out || j->duplicate) return;
    client_room_event_committed(j->srv, j->out);
    client_fed_event_committed(j->srv, j->out); /* other servers in the room */
}

static room_event *run(send_job *j, hs_err *err) {
    int rc = db_txn(j->srv->db, send_txn, j, err);
    if (j->pos > 0) db_stream_done(DB_STREAM_EVENTS, j->pos);
    if (rc < 0 || !j->out) {
        room_event_free(j->out);
        j->out = NULL;
        if (rc < 0 && j->txn_id) j->existing = find_txn(j);
        return NULL;
    }
    announce(j);
    return j->out;
}

/* ---- group commit of concurrent sends (group_commit.h) ----
 * At 20 senders a message's own work is a fraction of what it costs:
 * most of it is per statement and per transaction, so sends that arrive
 * together are written together. Only the plain case is batched (a
 * message-like event without a relation, in a room with one extremity);
 * anything else, and any send the batch could not take, runs alone, which
 * gives it the answer it would have had anyway. */

typedef struct send_batch {
    send_job **jobs;
    size_t n;
} send_batch;

static bool batchable(const json_t *proto) {
    const char *type = json_string_value(json_object_get(proto, "type"));
    return type && !json_object_get(proto, "state_key") && strcmp(type, "m.room.redaction") != 0 &&
           strcmp(type, "m.room.create") != 0 &&
           !json_object_get(json_object_get(proto, "content"), "m.relates_to");
}

static int batch_txn(db_conn *c, void *arg, hs_err *err) {
    /* The batch's statements take arrays, whose custom plans PostgreSQL
     * keeps choosing, planning each statement at every batch (about 8% of
     * its CPU per message); their generic plans are as good (lookups by
     * key, inserts from unnest). For this transaction only, so other
     * statements on the pooled connection still get custom plans. */
    static db_stmt generic =
        DB_STMT("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)");
    if (db_defer(c, &generic, 0, NULL, NULL, NULL, err) < 0) return -1;
    send_batch *b = arg;
    size_t n = b->n, m = 0;
    const char **rooms = calloc(n, sizeof *rooms);
    const json_t **protos = calloc(n, sizeof *protos);
    long long *pos = calloc(n, sizeof *pos);
    room_event **outs = calloc(n, sizeof *outs);
    send_job **sent = calloc(n, sizeof *sent);
    int rc = -1;
    if (!rooms || !protos || !pos || !outs || !sent) {
        hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        send_job *j = b->jobs[i];
        room_event_free(j->out); /* from an attempt db_txn retried */
        j->out = NULL;
        if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_EVENTS, err)) < 0) goto done;
        /* The channel rules concern none of the batchable kinds today; asked
         * all the same, so a new rule cannot be skipped here unnoticed. */
        if (client_channel_check_send(c, j->srv, j->room_id, j->proto, err) < 0) goto done;
        rooms[i] = j->room_id, protos[i] = j->proto, pos[i] = j->pos;
    }
    /* The rooms' lock, then the push recipients read under it, go in one
     * round trip, so PostgreSQL reads the recipients while the events are
     * built (room_send_local_many and client_room_events_stored find them
     * sent: the same statements with the same arguments, when the batch
     * keeps every send, as it usually does). */
    room_store_prefetch_heads(c, rooms, n);
    client_push_prefetch_many(c, b->jobs[0]->srv, rooms, protos, n);
    if (room_send_local_many(c, rooms, protos, n, b->jobs[0]->srv->cfg->server_name,
                             &b->jobs[0]->srv->key, pos, outs, err) < 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        if ((b->jobs[i]->out = outs[i])) sent[m] = b->jobs[i], outs[m++] = outs[i];
    const room_event *const *stored = (const room_event *const *)outs;
    if (client_room_events_stored(c, b->jobs[0]->srv, stored, m, err) == 0 &&
        record_txns(c, sent, m, err) == 0)
        rc = 0;
done:
    free(rooms);
    free(protos);
    free(pos);
    free(outs);
    free(sent);
    return rc;
}

/* A send parked on the queue (client_room_send_queued): its job, holding
 * its own reference to the proto, and its request to wake. */
typedef struct parked_send {
    send_job j;
    json_t *proto;
    gc_item it;
    hs_req *r;
} parked_send;

static void parked_free(void *arg) {
    parked_send *p = arg;
    room_event_free(p->j.result);
    free(p->j.existing);
    json_decref(p->proto);
    free(p);
}

/* The queue's batch function (group_commit.h): several sends in one
 * transaction, or each alone when there is one, when the batch left it out
 * (the auth rules refused it, its room is not a plain linear one) or when
 * the batch failed (then nothing of it stands). Each gets the answer it
 * would have had alone. */
static void write_batch(void **args, size_t n) {
    send_job *jobs[GC_MAX_BATCH];
    for (size_t i = 0; i < n; i++) jobs[i] = &((parked_send *)args[i])->j;
    hs_err err = {0};
    send_batch b = {jobs, n};
    int rc = n > 1 ? db_txn(jobs[0]->srv->db, batch_txn, &b, &err) : -1;
    if (rc == 0) hs_debug("group commit: %zu sends in one transaction", n);
    else if (n > 1)
        hs_debug("group commit: a batch of %zu sends failed (%s); each goes alone", n, err.msg);
    /* Every position readable before anyone is woken to read them. */
    for (size_t i = 0; i < n; i++)
        if (rc == 0 && jobs[i]->out) db_stream_done(DB_STREAM_EVENTS, jobs[i]->pos);
    for (size_t i = 0; i < n; i++) {
        send_job *j = jobs[i];
        if (rc == 0 && j->out) {
            announce(j);
            j->result = j->out;
        } else {
            room_event_free(j->out);
            j->out = NULL;
            j->result = run(j, &j->err);
        }
        /* The last touch: the request may end as soon as it is resumed. */
        hs_req_resume(((parked_send *)args[i])->r);
    }
}

static gc_queue sends = GC_QUEUE_INIT(write_batch);

void client_room_membership_changed(hs_server *srv, const room_event *ev) {
    /* Device lists follow membership; a failure here costs one stale list
     * (the next key change repairs it), so it is logged, not returned. */
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c || client_e2ee_on_membership(c, ev->room_id, ev->state_key, ev->membership, &err) < 0)
        hs_warn("device lists after %s's %s in %s: %s", ev->state_key, ev->membership,
                ev->room_id, err.msg);
    db_release(srv->db, c);
    /* A local user's push rules, tags and m.direct follow an upgraded room,
     * and this server's aliases and listing with the first local join
     * (upgrade_follow.h); as in Synapse, a failure is logged and the join
     * stands. */
    const char *colon = strchr(ev->state_key, ':');
    hs_err perr = {0};
    if (!strcmp(ev->membership, "join") && colon && !strcmp(colon + 1, srv->cfg->server_name) &&
        client_upgrade_follow_join(srv, ev->room_id, ev->state_key, &perr) < 0)
        hs_warn("following the upgrade of %s for %s: %s", ev->room_id, ev->state_key, perr.msg);
}

/* Transaction IDs are kept for a day, as Synapse keeps them: long enough
 * for any client's retries, and the table stays a day of sends. At most
 * once an hour, by whichever send comes first (no thread of its own). */
#define TXN_ID_KEEP_MS (24LL * 3600 * 1000)
#define TXN_ID_SWEEP_MS (3600LL * 1000)

static void expire_txn_ids(hs_server *srv) {
    static db_stmt old = DB_STMT("DELETE FROM event_txn_ids WHERE created_ts < $1");
    static atomic_llong last;
    long long now = hs_now_ms(), prev = atomic_load(&last);
    if (now - prev < TXN_ID_SWEEP_MS || !atomic_compare_exchange_strong(&last, &prev, now))
        return;
    char before[24];
    snprintf(before, sizeof before, "%lld", now - TXN_ID_KEEP_MS);
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    if (!c || db_exec(c, &old, 1, (const char *[]){before}, &err) < 0)
        hs_warn("expiring old transaction IDs: %s", err.msg);
    db_release(srv->db, c);
}

room_event *client_room_send_txn(hs_server *srv, const char *room_id, const json_t *proto,
                                 const char *device_id, const char *txn_id, char **existing,
                                 hs_err *err) {
    expire_txn_ids(srv);
    send_job j = {.srv = srv, .room_id = room_id, .proto = proto, .device_id = device_id,
                  .txn_id = txn_id};
    room_event *ev = run(&j, err);
    *existing = ev ? NULL : j.existing;
    if (ev) free(j.existing);
    return ev;
}

int client_room_send_queued(hs_req *r, const char *room_id, json_t *proto, const char *txn_id,
                           room_event **ev, char **existing, hs_err *err) {
    bool batch = batchable(proto);
    bool claimed = batch && gc_claim(&sends, room_id);
    parked_send *p = batch && !claimed && gc_start(&sends) == 0 ? calloc(1, sizeof *p) : NULL;
    if (p) {
        expire_txn_ids(r->srv);
        p->proto = json_incref(proto);
        p->j = (send_job){.srv = r->srv, .room_id = room_id, .proto = proto,
                          .device_id = r->device_id, .txn_id = txn_id};
        p->it = (gc_item){.key = room_id, .arg = p};
        p->r = r;
        r->ctx = p;
        r->ctx_free = parked_free;
        /* Parked before it is queued, so the writer's resume finds it parked. */
        hs_req_suspend(r);
        gc_enqueue(&sends, &p->it);
        return HS_SUSPENDED;
    }
    /* Not batchable, the queue idle (or no writer): at once, on this thread. */
    *ev = client_room_send_txn(r->srv, room_id, proto, r->device_id, txn_id, existing, err);
    if (claimed) gc_release(&sends, room_id);
    return 1;
}

room_event *client_room_send_parked(hs_req *r, char **existing, hs_err *err) {
    parked_send *p = r->ctx;
    room_event *ev = p->j.result;
    p->j.result = NULL;
    *existing = ev ? NULL : p->j.existing;
    if (!ev) {
        p->j.existing = NULL;
        if (!*existing) *err = p->j.err;
    }
    return ev;
}

room_event *client_room_send(hs_server *srv, const room_version *v, const char *room_id,
                             const json_t *proto, hs_err *err) {
    send_job j = {.srv = srv, .v = v, .room_id = room_id, .proto = proto};
    return run(&j, err);
}

room_event *client_room_send_state(hs_server *srv, const char *room_id, const char *sender,
                                   const char *type, const char *state_key, json_t *content,
                                   hs_err *err) {
    json_t *p = json_pack("{s:s, s:s, s:s, s:O}", "type", type, "sender", sender, "state_key",
                          state_key, "content", content);
    room_event *ev = client_room_send(srv, NULL, room_id, p, err);
    json_decref(p);
    return ev;
}
