/* sender_queue.c — the outbound queue in PostgreSQL (sql/014).
 *
 * Local changes reach the queue by the sender reading their streams: a
 * batch of positions is read, each item queued for its destinations, and
 * the stream position moved on, all in one transaction, so a crash either
 * queues a batch whole or leaves it to be read again. PDUs are queued by
 * reference (the event's bytes stay in `events`); EDUs as their content.
 * Rows leave the queue only once their destination accepted them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "sender_internal.h"

const char *const fed_stream_names[FED_STREAM_N] = {"events", "receipts", "presence",
                                                    "device_lists"};

bool fed_user_is_on(const char *user_id, const char *server_name) {
    const char *colon = user_id && user_id[0] == '@' ? strchr(user_id, ':') : NULL;
    return colon && !strcmp(colon + 1, server_name);
}

int fed_queue_load_positions(db_conn *c, long long pos[FED_STREAM_N], hs_err *err) {
    static db_stmt q = DB_STMT("SELECT stream, pos FROM federation_sender_positions");
    PGresult *r = db_run(c, &q, 0, NULL, err);
    if (!r) return -1;
    for (int s = 0; s < FED_STREAM_N; s++) pos[s] = 0;
    for (int i = 0; i < PQntuples(r); i++)
        for (int s = 0; s < FED_STREAM_N; s++)
            if (!strcmp(PQgetvalue(r, i, 0), fed_stream_names[s]))
                pos[s] = atoll(PQgetvalue(r, i, 1));
    PQclear(r);
    return 0;
}

/* ---- who gets what ------------------------------------------------------------- */

/* Adds a server name to out, but ours, invalid ones and those
 * federation_domain_whitelist leaves out. */
static void add_host(hs_server *srv, const char *h, json_t *out) {
    if (!strcmp(h, srv->cfg->server_name) || !hs_server_name_valid(h) ||
        !fed_domain_allowed(srv->cfg, h))
        return;
    json_object_set_new(out, h, json_true());
}

/* The same for the server names of column 0 of r. */
static void add_hosts(hs_server *srv, PGresult *r, json_t *out) {
    for (int i = 0; i < PQntuples(r); i++) add_host(srv, PQgetvalue(r, i, 0), out);
}

/* The same for a space-separated list (server names have no spaces). */
static void add_host_list(hs_server *srv, const char *list, json_t *out) {
    char *copy = strdup(list), *save = NULL;
    for (char *h = copy ? strtok_r(copy, " ", &save) : NULL; h; h = strtok_r(NULL, " ", &save))
        add_host(srv, h, out);
    free(copy);
}

/* The servers joined to the rooms of `rooms` (an SQL set of room IDs): while
 * a room's state is partial, its members' servers are mostly unknown, and
 * the servers the join answer listed stand in for them. */
#define ROOM_HOSTS(rooms)                                                                  \
    "SELECT cs.room_id, substr(cs.state_key, strpos(cs.state_key, ':') + 1) AS host"       \
    " FROM current_state cs WHERE cs.room_id IN (" rooms ") AND cs.type = 'm.room.member'" \
    " AND cs.membership = 'join'"                                                          \
    " UNION SELECT p.room_id, unnest(p.servers) FROM fed_partial_state_rooms p"            \
    " WHERE p.room_id IN (" rooms ")"

int fed_room_hosts(db_conn *c, hs_server *srv, const char *room_id, json_t *out, hs_err *err) {
    static db_stmt q = DB_STMT("SELECT h.host FROM (" ROOM_HOSTS("$1") ") h");
    PGresult *r = db_run(c, &q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    add_hosts(srv, r, out);
    PQclear(r);
    return 0;
}

int fed_user_hosts(db_conn *c, hs_server *srv, const char *user_id, json_t *out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT substr(o.state_key, strpos(o.state_key, ':') + 1)"
        " FROM current_state m JOIN current_state o ON o.room_id = m.room_id"
        "  AND o.type = 'm.room.member' AND o.membership = 'join'"
        " WHERE m.type = 'm.room.member' AND m.state_key = $1 AND m.membership = 'join'"
        /* rooms joined with partial state: the servers their join listed */
        " UNION SELECT unnest(p.servers) FROM current_state m JOIN fed_partial_state_rooms p"
        "  USING (room_id) WHERE m.type = 'm.room.member' AND m.state_key = $1"
        "  AND m.membership = 'join'");
    PGresult *r = db_run(c, &q, 1, (const char *[]){user_id}, err);
    if (!r) return -1;
    add_hosts(srv, r, out);
    PQclear(r);
    return 0;
}

/* ---- PDUs ---------------------------------------------------------------------- */

/* Growing parallel arrays of the rows one batch inserts. */
typedef struct pdu_rows {
    const char **dest, **event_id, **room_id;
    char **so;
    size_t n, cap;
} pdu_rows;

static void rows_add(pdu_rows *r, const char *dest, const char *so, const char *ev,
                     const char *room) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->dest = realloc(r->dest, r->cap * sizeof *r->dest);
        r->so = realloc(r->so, r->cap * sizeof *r->so);
        r->event_id = realloc(r->event_id, r->cap * sizeof *r->event_id);
        r->room_id = realloc(r->room_id, r->cap * sizeof *r->room_id);
    }
    r->dest[r->n] = dest, r->so[r->n] = strdup(so), r->event_id[r->n] = ev;
    r->room_id[r->n++] = room;
}

static void rows_free(pdu_rows *r) {
    for (size_t i = 0; i < r->n; i++) free(r->so[i]);
    free(r->dest), free(r->so), free(r->event_id), free(r->room_id);
}

static int rows_insert(db_conn *c, pdu_rows *r, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO federation_outbound_pdus (destination, stream_ordering, event_id, room_id)"
        " SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])"
        " ON CONFLICT DO NOTHING");
    if (!r->n) return 0;
    char *a[4] = {db_text_array(r->dest, r->n), db_text_array((const char **)r->so, r->n),
                  db_text_array(r->event_id, r->n), db_text_array(r->room_id, r->n)};
    int n = db_defer(c, &ins, 4, (const char *const *)a, NULL, NULL, err);
    for (int i = 0; i < 4; i++) free(a[i]);
    return n;
}

/* The destinations of one event: the servers joined to the room now (the
 * batch's query gives them, column 6, once per room), and for a membership event the target's
 * server (a member being kicked or banned, who may have been its server's
 * last, or an invite being rescinded). Not for an invite: PUT /invite
 * already gave the invitee's server the event, and its server is not in
 * the room, so a copy by /send is dropped ("not in the room") or, when it
 * lands while that server is joining, soft-failed (Synapse logs both). */
static json_t *event_dests(hs_server *srv, json_t *by_room, PGresult *r, int i) {
    const char *room = PQgetvalue(r, i, 2), *type = PQgetvalue(r, i, 3);
    json_t *hosts = json_object_get(by_room, room);
    if (!hosts) {
        hosts = json_object();
        add_host_list(srv, PQgetvalue(r, i, 6), hosts);
        json_object_set_new(by_room, room, hosts);
    }
    json_t *d = json_deep_copy(hosts);
    if (!strcmp(type, "m.room.member") && !PQgetisnull(r, i, 4) &&
        strcmp(PQgetvalue(r, i, 5), "invite") != 0) {
        const char *colon = strchr(PQgetvalue(r, i, 4), ':');
        if (colon && strcmp(colon + 1, srv->cfg->server_name) && hs_server_name_valid(colon + 1) &&
            fed_domain_allowed(srv->cfg, colon + 1))
            json_object_set_new(d, colon + 1, json_true());
    }
    return d;
}

/* Local events at positions (from, to]: accepted, not outliers, sent by our
 * users, not marked to stay unsent (fed_sender_mark_unsent). A room's
 * create event has nobody to go to. */
static int enqueue_events(db_conn *c, hs_server *srv, long long from, long long to, json_t *woken,
                          hs_err *err) {
    static db_stmt q = DB_STMT(
        "WITH ev AS (SELECT stream_ordering, event_id, room_id, type, state_key,"
        "  CASE WHEN type = 'm.room.member'"
        "   THEN convert_from(json, 'UTF8')::jsonb #>> '{content,membership}' END AS membership"
        "  FROM events"
        "  WHERE stream_ordering > $1 AND stream_ordering <= $2 AND NOT outlier"
        "  AND NOT soft_failed AND rejected_reason IS NULL AND proactively_send"
        "  AND substr(sender, strpos(sender, ':') + 1) = $3"
        "  AND NOT (type = 'm.room.create' AND state_key = '')),"
        " h AS (SELECT x.room_id, string_agg(DISTINCT x.host, ' ') AS hosts"
        "  FROM (" ROOM_HOSTS("SELECT room_id FROM ev") ") x GROUP BY x.room_id)"
        " SELECT ev.*, coalesce(h.hosts, '') FROM ev LEFT JOIN h USING (room_id)"
        " ORDER BY ev.stream_ordering");
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    PGresult *r = db_run(c, &q, 3, (const char *[]){f, t, srv->cfg->server_name}, err);
    if (!r) return -1;
    json_t *by_room = json_object(), *all = json_array();
    pdu_rows rows = {0};
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        json_t *d = event_dests(srv, by_room, r, i);
        if (!d) {
            rc = hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
            break;
        }
        const char *dest;
        json_t *v;
        json_object_foreach(d, dest, v) {
            json_object_set_new(woken, dest, json_true());
            /* rows point into these strings: keep them alive */
            json_t *s = json_string(dest);
            json_array_append_new(all, s);
            rows_add(&rows, json_string_value(s), PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                     PQgetvalue(r, i, 2));
        }
        json_decref(d);
    }
    if (rc == 0) rc = rows_insert(c, &rows, err);
    rows_free(&rows);
    json_decref(all);
    json_decref(by_room);
    PQclear(r);
    return rc;
}

/* Synapse's send_on_behalf_of: an event of a remote user we are to pass on
 * (a join, leave or knock that came to us through send_join / send_leave /
 * send_knock). Its own server already has it. */
int fed_sender_enqueue_pdu(db_conn *c, hs_server *srv, const char *event_id,
                           const char *room_id, long long stream_ordering, const char *except,
                           hs_err *err) {
    json_t *hosts = json_object();
    if (fed_room_hosts(c, srv, room_id, hosts, err) < 0) return json_decref(hosts), -1;
    if (except) json_object_del(hosts, except);
    pdu_rows rows = {0};
    char so[24];
    snprintf(so, sizeof so, "%lld", stream_ordering);
    const char *dest;
    json_t *v;
    json_object_foreach(hosts, dest, v) rows_add(&rows, dest, so, event_id, room_id);
    int rc = rows_insert(c, &rows, err);
    rows_free(&rows);
    json_decref(hosts);
    return rc;
}

int fed_sender_mark_unsent(db_conn *c, const char *event_id, hs_err *err) {
    static db_stmt up = DB_STMT("UPDATE events SET proactively_send = false WHERE event_id = $1");
    return db_exec(c, &up, 1, (const char *[]){event_id}, err) < 0 ? -1 : 0;
}

/* ---- reading a stream ------------------------------------------------------------- */

typedef struct enq_job {
    hs_server *srv;
    fed_stream s;
    long long upto, newpos;
    json_t *woken;
} enq_job;

static int enq_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt get = DB_STMT(
        "SELECT pos FROM federation_sender_positions WHERE stream = $1 FOR UPDATE");
    static db_stmt set = DB_STMT(
        "INSERT INTO federation_sender_positions (stream, pos) VALUES ($1, $2)"
        " ON CONFLICT (stream) DO UPDATE SET pos = $2");
    enq_job *j = arg;
    json_object_clear(j->woken); /* a retried transaction starts over */
    const char *name = fed_stream_names[j->s];
    PGresult *r = db_run(c, &get, 1, (const char *[]){name}, err);
    if (!r) return -1;
    long long from = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    long long to = j->upto < from + FED_ENQUEUE_BATCH ? j->upto : from + FED_ENQUEUE_BATCH;
    j->newpos = from;
    if (to <= from) return 0;
    int rc = 0;
    switch (j->s) {
    case FED_STREAM_EVENTS: rc = enqueue_events(c, j->srv, from, to, j->woken, err); break;
    case FED_STREAM_RECEIPTS: rc = fed_edus_receipts(c, j->srv, from, to, j->woken, err); break;
    case FED_STREAM_PRESENCE: rc = fed_edus_presence(c, j->srv, from, to, j->woken, err); break;
    default: rc = fed_edus_device_lists(c, j->srv, from, to, j->woken, err); break;
    }
    char p[24];
    snprintf(p, sizeof p, "%lld", to);
    if (rc < 0 || db_defer(c, &set, 2, (const char *[]){name, p}, NULL, NULL, err) < 0) return -1;
    j->newpos = to;
    return 0;
}

long long fed_queue_enqueue(hs_server *srv, fed_stream s, long long upto, json_t *woken,
                            hs_err *err) {
    enq_job j = {.srv = srv, .s = s, .upto = upto, .woken = json_object()};
    int rc = db_txn(srv->db, enq_txn, &j, err);
    if (rc == 0) json_object_update(woken, j.woken);
    json_decref(j.woken);
    return rc < 0 ? -1 : j.newpos;
}

/* ---- EDUs ------------------------------------------------------------------------ */

int fed_queue_edu(db_conn *c, const json_t *dests, const char *edu_type, const json_t *content,
                  const char *dedupe_key, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO federation_outbound_edus (destination, edu_type, content, dedupe_key)"
        " SELECT d, $2, $3, $4 FROM unnest($1::text[]) d"
        " ON CONFLICT (destination, dedupe_key) WHERE dedupe_key IS NOT NULL DO UPDATE"
        " SET edu_type = EXCLUDED.edu_type, content = EXCLUDED.content,"
        " seq = nextval('federation_outbound_edus_seq')");
    size_t n = json_object_size(dests), i = 0;
    if (!n) return 0;
    const char **names = calloc(n, sizeof *names);
    const char *d;
    json_t *v;
    json_object_foreach((json_t *)dests, d, v) names[i++] = d;
    char *arr = db_text_array(names, n);
    free(names);
    char *text = hs_json_canonical(content, NULL, err);
    long rc = text ? db_exec(c, &ins, 4, (const char *[]){arr, edu_type, text, dedupe_key}, err)
                   : -1;
    free(text);
    free(arr);
    return rc < 0 ? -1 : 0;
}

/* ---- which destinations have work --------------------------------------------------- */

static int add_column(db_conn *c, db_stmt *st, int n, const char *const *p, json_t *out,
                      hs_err *err) {
    PGresult *r = db_run(c, st, n, p, err);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) json_object_set_new(out, PQgetvalue(r, i, 0), json_true());
    PQclear(r);
    return 0;
}

int fed_queue_pending_destinations(db_conn *c, json_t *out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT destination FROM federation_outbound_pdus"
        " UNION SELECT DISTINCT destination FROM federation_outbound_edus"
        " UNION SELECT DISTINCT destination FROM device_federation_outbox");
    return add_column(c, &q, 0, NULL, out, err);
}

int fed_queue_to_device_destinations(db_conn *c, long long from, long long to, json_t *out,
                                     hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT DISTINCT destination FROM device_federation_outbox"
        " WHERE stream_id > $1 AND stream_id <= $2");
    char f[24], t[24];
    snprintf(f, sizeof f, "%lld", from);
    snprintf(t, sizeof t, "%lld", to);
    return add_column(c, &q, 2, (const char *[]){f, t}, out, err);
}

/* ---- transactions ---------------------------------------------------------------------- */

void fed_txn_init(fed_txn *t) {
    t->pdus = json_array(), t->edus = json_array();
    t->pdu_keys = json_array(), t->edu_keys = json_array(), t->td_keys = json_array();
}

void fed_txn_clear(fed_txn *t) {
    json_decref(t->pdus), json_decref(t->edus);
    json_decref(t->pdu_keys), json_decref(t->edu_keys), json_decref(t->td_keys);
    memset(t, 0, sizeof *t);
}

bool fed_txn_empty(const fed_txn *t) {
    return !json_array_size(t->pdu_keys) && !json_array_size(t->edu_keys) &&
           !json_array_size(t->td_keys) && !json_array_size(t->edus);
}

static int build_pdus(db_conn *c, const char *dest, fed_txn *t, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT q.stream_ordering, convert_from(e.json, 'UTF8') FROM federation_outbound_pdus q"
        " LEFT JOIN events e ON e.event_id = q.event_id WHERE q.destination = $1"
        " ORDER BY q.stream_ordering LIMIT 50");
    PGresult *r = db_run(c, &q, 1, (const char *[]){dest}, err);
    if (!r) return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        json_array_append_new(t->pdu_keys, json_integer(atoll(PQgetvalue(r, i, 0))));
        if (PQgetisnull(r, i, 1)) continue; /* purged since: nothing to send */
        hs_err perr;
        const char *text = PQgetvalue(r, i, 1);
        json_t *ev = hs_json_parse_object(text, strlen(text), &perr);
        if (ev) json_array_append_new(t->pdus, ev);
    }
    PQclear(r);
    return 0;
}

/* How many of the first n to-device rows go in one transaction: they stop
 * before a second message of the same sender. Synapse handles the EDUs of a
 * transaction concurrently (up to ten at once), so two of one sender could
 * reach the recipient in either order, and clients rely on a sender's order
 * (a SAS verification's m.key.verification.mac then .done: the other way
 * round, matrix-js-sdk times the verification out). One per transaction
 * keeps their order, since a destination has one transaction in flight. */
static int to_device_in_order(PGresult *rt, int n) {
    json_t *senders = json_object();
    int i = 0;
    for (; i < n; i++) {
        hs_err perr;
        const char *text = PQgetvalue(rt, i, 1);
        json_t *edu = hs_json_parse_object(text, strlen(text), &perr);
        const char *sender = json_string_value(json_object_get(edu, "sender"));
        bool again = sender && json_object_get(senders, sender);
        if (sender && !again) json_object_set_new(senders, sender, json_true());
        json_decref(edu);
        if (again) break;
    }
    json_decref(senders);
    return i;
}

/* Queued EDUs and to-device messages share the budget; when both have more
 * than fits, each gets at least half of it. */
static int build_edus(db_conn *c, const char *dest, int budget, fed_txn *t, hs_err *err) {
    static db_stmt qe = DB_STMT(
        "SELECT seq, edu_type, content FROM federation_outbound_edus WHERE destination = $1"
        " ORDER BY seq LIMIT $2");
    static db_stmt qt = DB_STMT(
        "SELECT stream_id, edu_json FROM device_federation_outbox WHERE destination = $1"
        " ORDER BY stream_id LIMIT $2");
    if (budget <= 0) return 0;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", budget);
    PGresult *re = db_run(c, &qe, 2, (const char *[]){dest, lim}, err);
    PGresult *rt = re ? db_run(c, &qt, 2, (const char *[]){dest, lim}, err) : NULL;
    if (!rt) return PQclear(re), -1;
    int ne = PQntuples(re), nt = to_device_in_order(rt, PQntuples(rt));
    if (ne + nt > budget) {
        int half = budget / 2;
        ne = ne < half ? ne : (nt < budget - half ? budget - nt : budget - half);
        nt = budget - ne < nt ? budget - ne : nt;
    }
    hs_err perr;
    for (int i = 0; i < ne; i++) {
        json_array_append_new(t->edu_keys, json_integer(atoll(PQgetvalue(re, i, 0))));
        const char *text = PQgetvalue(re, i, 2);
        json_t *content = hs_json_parse_object(text, strlen(text), &perr);
        if (content)
            json_array_append_new(t->edus, json_pack("{s:s, s:o}", "edu_type",
                                                     PQgetvalue(re, i, 1), "content", content));
    }
    for (int i = 0; i < nt; i++) {
        json_array_append_new(t->td_keys, json_integer(atoll(PQgetvalue(rt, i, 0))));
        const char *text = PQgetvalue(rt, i, 1);
        json_t *content = hs_json_parse_object(text, strlen(text), &perr);
        if (content)
            json_array_append_new(t->edus, json_pack("{s:s, s:o}", "edu_type",
                                                     "m.direct_to_device", "content", content));
    }
    PQclear(re), PQclear(rt);
    return 0;
}

int fed_queue_build(db_conn *c, const char *destination, int max_edus, fed_txn *t, hs_err *err) {
    if (build_pdus(c, destination, t, err) < 0) return -1;
    return build_edus(c, destination, max_edus, t, err);
}

/* "{1,2,3}" of a JSON array of integers (malloc'd). */
static char *int_array(const json_t *a) {
    size_t n = json_array_size(a), cap = n * 21 + 3, len = 1;
    char *s = malloc(cap);
    s[0] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)json_integer_value(json_array_get(a, i)));
    snprintf(s + len, cap - len, "}");
    return s;
}

static int delete_keys(db_conn *c, db_stmt *st, const char *dest, const json_t *keys, hs_err *err) {
    if (!json_array_size(keys)) return 0;
    char *arr = int_array(keys);
    long n = db_exec(c, st, 2, (const char *[]){dest, arr}, err);
    free(arr);
    return n < 0 ? -1 : 0;
}

int fed_queue_delete(db_conn *c, const char *destination, const fed_txn *t, hs_err *err) {
    static db_stmt dp = DB_STMT(
        "DELETE FROM federation_outbound_pdus WHERE destination = $1"
        " AND stream_ordering = ANY($2::bigint[])");
    static db_stmt de = DB_STMT(
        "DELETE FROM federation_outbound_edus WHERE destination = $1 AND seq = ANY($2::bigint[])");
    static db_stmt dt = DB_STMT(
        "DELETE FROM device_federation_outbox WHERE destination = $1"
        " AND stream_id = ANY($2::bigint[])");
    if (delete_keys(c, &dp, destination, t->pdu_keys, err) < 0 ||
        delete_keys(c, &de, destination, t->edu_keys, err) < 0 ||
        delete_keys(c, &dt, destination, t->td_keys, err) < 0)
        return -1;
    return 0;
}

long long fed_queue_catch_up(db_conn *c, const char *destination, long long max, hs_err *err) {
    static db_stmt count = DB_STMT(
        "SELECT count(*) FROM federation_outbound_pdus WHERE destination = $1");
    static db_stmt keep_latest = DB_STMT(
        "DELETE FROM federation_outbound_pdus WHERE destination = $1 AND stream_ordering IN ("
        " SELECT stream_ordering FROM (SELECT stream_ordering, row_number() OVER"
        "  (PARTITION BY room_id ORDER BY stream_ordering DESC) AS rn"
        "  FROM federation_outbound_pdus WHERE destination = $1) x WHERE rn > 1)");
    PGresult *r = db_run(c, &count, 1, (const char *[]){destination}, err);
    if (!r) return -1;
    long long n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (n <= max) return 0;
    return db_exec(c, &keep_latest, 1, (const char *[]){destination}, err);
}

/* ---- back-off rows ---------------------------------------------------------------------- */

int fed_queue_load_retries(db_conn *c, fed_retry_row **rows, size_t *n, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT destination, retry_last_ts, retry_interval_ms, coalesce(failure_ts, 0)"
        " FROM federation_destinations WHERE retry_interval_ms > 0");
    *rows = NULL, *n = 0;
    PGresult *r = db_run(c, &q, 0, NULL, err);
    if (!r) return -1;
    *n = (size_t)PQntuples(r);
    *rows = calloc(*n + 1, sizeof **rows);
    for (size_t i = 0; i < *n; i++) {
        (*rows)[i].destination = strdup(PQgetvalue(r, (int)i, 0));
        (*rows)[i].retry_last_ts = atoll(PQgetvalue(r, (int)i, 1));
        (*rows)[i].retry_interval_ms = atoll(PQgetvalue(r, (int)i, 2));
        (*rows)[i].failure_ts = atoll(PQgetvalue(r, (int)i, 3));
    }
    PQclear(r);
    return 0;
}

int fed_queue_store_retry(db_conn *c, const char *destination, long long failure_ts,
                          long long retry_last_ts, long long interval, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO federation_destinations"
        " (destination, failure_ts, retry_last_ts, retry_interval_ms, last_success_ts)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (destination) DO UPDATE"
        " SET failure_ts = $2, retry_last_ts = $3, retry_interval_ms = $4,"
        " last_success_ts = coalesce($5, federation_destinations.last_success_ts)");
    char f[24], l[24], i[24], now[24];
    snprintf(f, sizeof f, "%lld", failure_ts);
    snprintf(l, sizeof l, "%lld", retry_last_ts);
    snprintf(i, sizeof i, "%lld", interval);
    snprintf(now, sizeof now, "%lld", interval ? 0LL : retry_last_ts);
    /* Up again: Synapse's zeros, and when it was last heard from. */
    const char *p[] = {destination, interval ? f : NULL, interval ? l : "0", i,
                       interval ? NULL : now};
    return db_exec(c, &up, 5, p, err) < 0 ? -1 : 0;
}
