/* push_actions.c — evaluating push rules for a new room event, once per local
 * recipient, inside the transaction that persists the event, so the counts
 * /sync reports and the event itself appear together (as the spec requires).
 *
 * Cost per event: a handful of queries whatever the room's size (recipients
 * with the member count, their rules, one batched insert); the members' display names
 * are only loaded when the event has a body to look for them in, and power
 * levels only when a rule asks about the sender's permission. */
#include "push_actions.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "push_rules.h"
#include "push_store.h"
#include "rooms/state_lookup.h"

#define THREAD_HOPS 3 /* the spec's advice: stop looking for a thread after 3 relations */

typedef struct hook_job {
    db_conn *c;
    const room_event *ev;
    room_lookup lookup;
    bool lookup_used;
} hook_job;

static int load_power(void *arg, const json_t **pl, long long *sender_power) {
    hook_job *h = arg;
    h->lookup = (room_lookup){.c = h->c, .room_id = h->ev->room_id, .current = true};
    h->lookup_used = true;
    const room_event *e = room_lookup_get(&h->lookup, "m.room.power_levels", "");
    *pl = e ? e->content : NULL;
    *sender_power = room_user_power_level(h->ev->ver, h->ev->sender, room_lookup_get, &h->lookup);
    return h->lookup.failed ? -1 : 0;
}

/* After load_power (the lookup is ready): a recipient's power level. */
static int load_user_power(void *arg, const char *user_id, long long *power) {
    hook_job *h = arg;
    if (!h->lookup_used) return -1;
    *power = room_user_power_level(h->ev->ver, user_id, room_lookup_get, &h->lookup);
    return h->lookup.failed ? -1 : 0;
}

/* The content of a stored event of the room, or NULL. */
static json_t *stored_content(db_conn *c, const char *room_id, const char *event_id, hs_err *err,
                              bool *failed) {
    static db_stmt q = DB_STMT("SELECT convert_from(json, 'UTF8') FROM events"
                               " WHERE event_id = $1 AND room_id = $2");
    PGresult *r = db_run(c, &q, 2, (const char *[]){event_id, room_id}, err);
    if (!r) return *failed = true, NULL;
    json_t *ev = PQntuples(r) ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
    PQclear(r);
    json_t *content = json_incref(json_object_get(ev, "content"));
    json_decref(ev);
    return content;
}

/* The thread an event belongs to: the root of its m.thread relation, or of
 * the event it relates to (a reaction or edit in a thread), else "main". */
static int thread_of(db_conn *c, const char *room_id, const json_t *content, char *out,
                     size_t len, hs_err *err) {
    snprintf(out, len, "main");
    json_t *cur = json_incref((json_t *)content);
    bool failed = false;
    for (int hop = 0; hop < THREAD_HOPS && cur; hop++) {
        const json_t *rel = json_object_get(cur, "m.relates_to");
        const char *type = json_string_value(json_object_get(rel, "rel_type"));
        const char *target = json_string_value(json_object_get(rel, "event_id"));
        if (!type || !target) break;
        if (!strcmp(type, "m.thread")) {
            snprintf(out, len, "%s", target);
            break;
        }
        json_t *next = stored_content(c, room_id, target, err, &failed);
        json_decref(cur);
        cur = next;
    }
    json_decref(cur);
    return failed ? -1 : 0;
}

static bool is_local(const char *user_id, const char *server_name) {
    const char *colon = user_id ? strchr(user_id, ':') : NULL;
    return colon && !strcmp(colon + 1, server_name);
}

/* stream_ordering of a persisted event that may notify, or 0 (outlier,
 * soft-failed, rejected, unknown), or -1. */
static long long notifiable_position(db_conn *c, const room_event *ev, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT stream_ordering FROM events WHERE event_id = $1 AND NOT outlier"
        " AND NOT soft_failed AND rejected_reason IS NULL AND stream_ordering IS NOT NULL");
    PGresult *r = db_run(c, &q, 1, (const char *[]){ev->event_id}, err);
    if (!r) return -1;
    long long pos = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return pos;
}

/* ":server_name" as a LIKE pattern's tail: the server name's own % and _
 * escaped. */
static void local_suffix(const char *server_name, char *suffix, size_t size) {
    size_t k = 0;
    suffix[k++] = ':';
    for (const char *p = server_name; *p && k < size - 3; p++) {
        if (*p == '%' || *p == '_' || *p == '\\') suffix[k++] = '\\';
        suffix[k++] = *p;
    }
    suffix[k] = 0;
}

/* What the recipients queries (one event, or a batch) share: the room's
 * joined member count, and the rule that nobody hears from a user they
 * ignore (sql/006's account data). */
#define JOINED_COUNT(room)                                                              \
    "(SELECT count(*) FROM current_state j WHERE j.room_id = " room                     \
    "  AND j.type = 'm.room.member' AND j.membership = 'join')"
#define NOT_IGNORING(sender)                                                            \
    "NOT EXISTS (SELECT 1 FROM account_data ad WHERE ad.user_id = cs.state_key"          \
    "  AND ad.room_id = '' AND ad.type = 'm.ignored_user_list'"                          \
    "  AND jsonb_typeof(ad.content->'ignored_users') = 'object'"                         \
    "  AND ad.content->'ignored_users' ? " sender ")"

/* Local joined members but the sender, and the invitee, unless they ignore
 * the sender: user ID, display name in the room (sql/034), the room's joined member count (every row the same), and
 * their push rules and changes to defaults (push_store.h). Run (prefetch
 * false), or sent ahead (db_prefetch) for the run to find. */
static PGresult *recipients(db_conn *c, const char *room_id, const char *sender,
                            const char *invitee, const char *server_name, bool prefetch,
                            hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT cs.state_key, cs.display_name,"
        " " JOINED_COUNT("$1") ","
        " " PUSH_STORE_RULES_OF("cs.state_key") ", " PUSH_STORE_CHANGES_OF("cs.state_key")
        " FROM current_state cs"
        " WHERE cs.room_id = $1 AND cs.type = 'm.room.member'"
        " AND (cs.membership = 'join' OR cs.state_key = $2) AND cs.state_key <> $3"
        " AND cs.state_key LIKE '%' || $4 AND " NOT_IGNORING("$3"));
    char suffix[300];
    local_suffix(server_name, suffix, sizeof suffix);
    const char *p[] = {room_id, invitee, sender, suffix};
    if (!prefetch) return db_run(c, &q, 4, p, err);
    db_prefetch(c, &q, 4, p, 0, err);
    return NULL;
}

void client_push_prefetch(db_conn *c, const hs_server *srv, const char *room_id,
                          const json_t *proto) {
    const char *sender = json_string_value(json_object_get(proto, "sender"));
    if (!sender || json_object_get(proto, "state_key")) return;
    hs_err ignored = {0};
    recipients(c, room_id, sender, NULL, srv->cfg->server_name, true, &ignored);
}

/* Columns of a recipients row, from k on (k = 1 in the batched query,
 * whose first column is the event's position in the batch): user ID,
 * display name, member count, push rules, changes to defaults. */

/* Evaluate for each recipient (rows from to end of who, columns from k);
 * collect {user_id, notify, highlight, actions} and, when given, more's
 * fields (the event's, for a batch) into batch. */
static int evaluate_all(hook_job *h, PGresult *who, int k, int from, int end, const json_t *more,
                        json_t *batch, hs_err *err) {
    push_ctx ctx = {.member_count = atoll(PQgetvalue(who, from, k + 2)), .load_power = load_power,
                    .load_arg = h, .load_user_power = load_user_power};
    int rc = 0;
    for (int i = from; i < end && rc == 0; i++) {
        const char *user = PQgetvalue(who, i, k);
        ctx.user_id = user;
        ctx.display_name = PQgetisnull(who, i, k + 1) ? NULL : PQgetvalue(who, i, k + 1);
        json_t *rules = push_store_rules_from_json(
            PQgetisnull(who, i, k + 3) ? NULL : PQgetvalue(who, i, k + 3));
        json_t *changes = push_store_changes_from_json(
            PQgetisnull(who, i, k + 4) ? NULL : PQgetvalue(who, i, k + 4));
        push_result res;
        rc = push_rules_evaluate(rules, changes, h->ev->json, &ctx, &res);
        if (rc == 0 && (res.notify || res.highlight)) {
            json_t *row = json_pack("{s:s, s:b, s:b, s:O}", "user_id", user, "notify",
                                    res.notify, "highlight", res.highlight, "actions",
                                    res.actions);
            if (more) json_object_update(row, (json_t *)more);
            json_array_append_new(batch, row);
        }
        push_result_clear(&res); /* before the rules it may point into */
        json_decref(rules);
        json_decref(changes);
    }
    if (rc < 0) {
        if (h->lookup_used) *err = h->lookup.err;
        else hs_err_set(err, 500, "M_UNKNOWN", "cannot load the room's power levels");
    }
    return rc;
}

/* What both store statements (one event, or a batch) end with: the
 * sender's read position only moves forward, and the actions' columns. */
#define SENT_READ_FORWARD                                                               \
    "  ON CONFLICT (user_id, room_id, thread_id) DO UPDATE SET stream_ordering ="       \
    "  greatest(push_sent_reads.stream_ordering, EXCLUDED.stream_ordering))"
#define INSERT_PUSH_ACTIONS                                                             \
    " INSERT INTO event_push_actions (user_id, room_id, event_id, stream_ordering, thread_id," \
    " notify, highlight, actions, ts)"

/* What the rules decided ([{user_id, notify, highlight, actions}]) and, for
 * a local sender (reader not NULL), that the sender has read up to its own
 * event: one statement. */
static int store_results(db_conn *c, const room_event *ev, long long pos, const char *thread,
                         json_t *batch, const char *reader, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "WITH r AS (INSERT INTO push_sent_reads (user_id, room_id, thread_id, stream_ordering)"
        "  SELECT $7::text, $1, $4, $3::bigint WHERE $7::text IS NOT NULL"
        SENT_READ_FORWARD INSERT_PUSH_ACTIONS
        " SELECT x.user_id, $1, $2, $3::bigint, $4, x.notify, x.highlight, x.actions, $5::bigint"
        " FROM jsonb_to_recordset($6::jsonb)"
        "  AS x(user_id text, notify boolean, highlight boolean, actions jsonb)"
        " ON CONFLICT (user_id, event_id) DO NOTHING");
    if (!reader && json_array_size(batch) == 0) return 0;
    char spos[24], now[24];
    snprintf(spos, sizeof spos, "%lld", pos);
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    char *rows = json_dumps(batch, JSON_COMPACT);
    if (!rows) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    const char *p[] = {ev->room_id, ev->event_id, spos, thread, now, rows, reader};
    int n = db_defer(c, &ins, 7, p, NULL, NULL, err);
    free(rows);
    return n < 0 ? -1 : 0;
}

int client_push_process_event(db_conn *c, const hs_server *srv, const room_event *ev,
                              hs_err *err) {
    if (ev->rejected || !ev->room_id || !ev->sender) return 0;
    const char *server_name = srv->cfg->server_name;
    /* A local send knows where it stored the event; others ask. */
    long long pos = ev->stream_ordering > 0 ? ev->stream_ordering : notifiable_position(c, ev, err);
    if (pos <= 0) return (int)pos;
    char thread[300];
    if (thread_of(c, ev->room_id, ev->content, thread, sizeof thread, err) < 0) return -1;
    const char *reader = is_local(ev->sender, server_name) ? ev->sender : NULL;
    const char *invitee = ev->membership && !strcmp(ev->membership, "invite") ? ev->state_key : NULL;
    PGresult *who = recipients(c, ev->room_id, ev->sender, invitee, server_name, false, err);
    if (!who) return -1;
    int rc = 0;
    json_t *batch = json_array();
    if (PQntuples(who) > 0) {
        hook_job h = {.c = c, .ev = ev};
        rc = evaluate_all(&h, who, 0, 0, PQntuples(who), NULL, batch, err);
        if (h.lookup_used) room_lookup_clear(&h.lookup);
    }
    PQclear(who);
    if (rc == 0) rc = store_results(c, ev, pos, thread, batch, reader, err);
    json_decref(batch);
    return rc;
}

/* ---- batches of events (the batched local sends of room_send.c) ----
 * The same as client_push_process_event, in two statements for all. */

/* For each event to process (rooms, invitees or '', senders: n of each),
 * its local joined members but the sender, and the invitee, unless they
 * ignore the sender: the event's 1-based position, user ID, display name,
 * the room's joined member count (every row of the event the same), and
 * their push rules and changes to defaults (push_store.h); ordered by
 * event. One query however many events. Run (prefetch false: NULL with err
 * on failure), or sent ahead (db_prefetch) for the run to find. */
static PGresult *recipients_many(db_conn *c, const char **const cols[3], size_t n,
                                 const char *server_name, bool prefetch, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT k.i, cs.state_key, cs.display_name,"
        " " JOINED_COUNT("k.room") ","
        " " PUSH_STORE_RULES_OF("cs.state_key") ", " PUSH_STORE_CHANGES_OF("cs.state_key")
        " FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(room, invitee,"
        "  sender, i)"
        " JOIN current_state cs ON cs.room_id = k.room AND cs.type = 'm.room.member'"
        "  AND (cs.membership = 'join' OR cs.state_key = k.invitee) AND cs.state_key <> k.sender"
        "  AND cs.state_key LIKE '%' || $4"
        " WHERE " NOT_IGNORING("k.sender") " ORDER BY k.i");
    char suffix[300];
    local_suffix(server_name, suffix, sizeof suffix);
    char *arr[3] = {0};
    PGresult *r = NULL;
    for (int k = 0; k < 3; k++)
        if (!(arr[k] = db_text_array(cols[k], n))) {
            hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
            goto done;
        }
    const char *p[] = {arr[0], arr[1], arr[2], suffix};
    if (prefetch) db_prefetch(c, &q, 4, p, 0, err);
    else r = db_run(c, &q, 4, p, err);
done:
    for (int k = 0; k < 3; k++) free(arr[k]);
    return r;
}

void client_push_prefetch_many(db_conn *c, const hs_server *srv, const char *const *room_ids,
                               const json_t *const *protos, size_t n) {
    const char **col[3] = {calloc(n ? n : 1, sizeof(char *)), calloc(n ? n : 1, sizeof(char *)),
                           calloc(n ? n : 1, sizeof(char *))};
    bool ok = col[0] && col[1] && col[2];
    for (size_t i = 0; ok && i < n; i++) {
        col[0][i] = room_ids[i];
        col[1][i] = ""; /* no invitee: a message */
        col[2][i] = json_string_value(json_object_get(protos[i], "sender"));
        ok = col[2][i] && !json_object_get(protos[i], "state_key");
    }
    hs_err ignored = {0};
    if (ok) recipients_many(c, col, n, srv->cfg->server_name, true, &ignored);
    for (int k = 0; k < 3; k++) free(col[k]);
}

static int store_results_many(db_conn *c, const json_t *batch, const json_t *reads, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "WITH r AS (INSERT INTO push_sent_reads (user_id, room_id, thread_id, stream_ordering)"
        "  SELECT DISTINCT ON (user_id, room_id, thread_id) user_id, room_id, thread_id, so"
        "  FROM jsonb_to_recordset($1::jsonb) AS x(user_id text, room_id text, thread_id text,"
        "   so bigint) ORDER BY user_id, room_id, thread_id, so DESC"
        SENT_READ_FORWARD INSERT_PUSH_ACTIONS
        " SELECT x.user_id, x.room_id, x.event_id, x.so, x.thread_id, x.notify, x.highlight,"
        "  x.actions, $3::bigint"
        " FROM jsonb_to_recordset($2::jsonb) AS x(user_id text, room_id text, event_id text,"
        "  so bigint, thread_id text, notify boolean, highlight boolean, actions jsonb)"
        " ON CONFLICT (user_id, event_id) DO NOTHING");
    if (json_array_size(reads) == 0 && json_array_size(batch) == 0) return 0;
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    char *rows = json_dumps(batch, JSON_COMPACT), *rd = json_dumps(reads, JSON_COMPACT);
    int n = rows && rd ? db_defer(c, &ins, 3, (const char *[]){rd, rows, now}, NULL, NULL, err)
                       : hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    free(rows);
    free(rd);
    return n < 0 ? -1 : 0;
}

/* One event to process: where it notifies from, its thread, and its row of
 * the recipients query's columns. */
typedef struct push_item {
    const room_event *ev;
    long long pos;
    char thread[300];
} push_item;

static int process_items(db_conn *c, const hs_server *srv, push_item *items, size_t n,
                         hs_err *err) {
    const char *server_name = srv->cfg->server_name;
    const char **col[3];
    for (int k = 0; k < 3; k++) col[k] = calloc(n ? n : 1, sizeof(char *));
    json_t *batch = json_array(), *reads = json_array();
    PGresult *who = NULL;
    int rc = -1;
    for (int k = 0; k < 3; k++)
        if (!col[k]) goto done;
    for (size_t i = 0; i < n; i++) {
        const room_event *ev = items[i].ev;
        const char *invitee =
            ev->membership && !strcmp(ev->membership, "invite") ? ev->state_key : NULL;
        col[0][i] = ev->room_id;
        col[1][i] = invitee ? invitee : ""; /* no member has the empty state key */
        col[2][i] = ev->sender;
        if (is_local(ev->sender, server_name))
            json_array_append_new(reads, json_pack("{s:s, s:s, s:s, s:I}", "user_id", ev->sender,
                                                   "room_id", ev->room_id, "thread_id",
                                                   items[i].thread, "so",
                                                   (json_int_t)items[i].pos));
    }
    if (!(who = recipients_many(c, (const char **const *)col, n, server_name, false, err)))
        goto done;
    rc = 0;
    for (int row = 0; row < PQntuples(who) && rc == 0;) {
        int end = row;
        while (end < PQntuples(who) && !strcmp(PQgetvalue(who, end, 0), PQgetvalue(who, row, 0)))
            end++;
        size_t i = (size_t)atoll(PQgetvalue(who, row, 0)) - 1;
        if (i >= n) break;
        hook_job h = {.c = c, .ev = items[i].ev};
        json_t *more = json_pack("{s:s, s:s, s:I, s:s}", "room_id", h.ev->room_id, "event_id",
                                 h.ev->event_id, "so", (json_int_t)items[i].pos, "thread_id",
                                 items[i].thread);
        rc = evaluate_all(&h, who, 1, row, end, more, batch, err);
        json_decref(more);
        if (h.lookup_used) room_lookup_clear(&h.lookup);
        row = end;
    }
    if (rc == 0) rc = store_results_many(c, batch, reads, err);
done:
    if (who) PQclear(who);
    for (int k = 0; k < 3; k++) free(col[k]);
    json_decref(batch);
    json_decref(reads);
    return rc;
}

int client_push_process_events(db_conn *c, const hs_server *srv, const room_event *const *evs,
                               size_t n, hs_err *err) {
    if (n == 1) return client_push_process_event(c, srv, evs[0], err);
    push_item *items = calloc(n ? n : 1, sizeof *items);
    if (!items) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    size_t m = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const room_event *ev = evs[i];
        if (ev->rejected || !ev->room_id || !ev->sender) continue;
        /* A local send knows where it stored the event; others ask. */
        long long pos =
            ev->stream_ordering > 0 ? ev->stream_ordering : notifiable_position(c, ev, err);
        if (pos < 0) rc = -1;
        if (pos <= 0) continue;
        items[m] = (push_item){.ev = ev, .pos = pos};
        if (thread_of(c, ev->room_id, ev->content, items[m].thread, sizeof items[m].thread,
                      err) < 0)
            rc = -1;
        m++;
    }
    if (rc == 0 && m > 0) rc = process_items(c, srv, items, m, err);
    free(items);
    return rc;
}

/* ---- unread counts ---- */

/* Read positions per thread ('' = unthreaded): receipts and own events. */
#define READ_UPTO                                                                          \
    "WITH r AS ("                                                                          \
    " SELECT rc.thread_id, e.stream_ordering AS so FROM receipts rc"                       \
    " JOIN events e ON e.event_id = rc.event_id"                                           \
    " WHERE rc.room_id = $2 AND rc.user_id = $1"                                           \
    " AND rc.receipt_type IN ('m.read', 'm.read.private')"                                 \
    " UNION ALL SELECT s.thread_id, s.stream_ordering FROM push_sent_reads s"              \
    " WHERE s.user_id = $1 AND s.room_id = $2),"                                           \
    " m AS (SELECT thread_id, max(so) AS so FROM r GROUP BY thread_id) "

int client_push_unread(db_conn *c, const char *user_id, const char *room_id,
                       json_t **unread_notifications, json_t **unread_thread_notifications,
                       hs_err *err) {
    static db_stmt q = DB_STMT(
        READ_UPTO
        "SELECT a.thread_id, count(*) FILTER (WHERE a.notify),"
        " count(*) FILTER (WHERE a.highlight) FROM event_push_actions a"
        " WHERE a.user_id = $1 AND a.room_id = $2"
        " AND a.stream_ordering > coalesce((SELECT so FROM m WHERE m.thread_id = ''), 0)"
        " AND a.stream_ordering > coalesce((SELECT so FROM m WHERE m.thread_id = a.thread_id), 0)"
        " GROUP BY a.thread_id");
    *unread_notifications = NULL;
    if (unread_thread_notifications) *unread_thread_notifications = NULL;
    PGresult *r = db_run(c, &q, 2, (const char *[]){user_id, room_id}, err);
    if (!r) return -1;
    long long notif = 0, high = 0;
    json_t *threads = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *thread = PQgetvalue(r, i, 0);
        long long n = atoll(PQgetvalue(r, i, 1)), h = atoll(PQgetvalue(r, i, 2));
        bool main = !strcmp(thread, "main");
        if (!unread_thread_notifications || main) notif += n, high += h;
        else if (n || h)
            json_object_set_new(threads, thread, json_pack("{s:I, s:I}", "notification_count",
                                                           (json_int_t)n, "highlight_count",
                                                           (json_int_t)h));
    }
    PQclear(r);
    *unread_notifications = json_pack("{s:I, s:I}", "notification_count", (json_int_t)notif,
                                      "highlight_count", (json_int_t)high);
    if (unread_thread_notifications && json_object_size(threads) > 0)
        *unread_thread_notifications = json_incref(threads);
    json_decref(threads);
    return 0;
}
