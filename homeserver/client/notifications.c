/* notifications.c — GET /notifications: the events a user was notified
 * about, newest first, with whether their read receipt has passed each.
 *
 * Tokens are the stream ordering of the last notification returned; the
 * next page holds the ones before it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "events_read.h"
#include "homeserver/core/json.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 1000

/* Whether the user's read position in (room, thread) passed a row: the
 * latest m.read / m.read.private receipt (unthreaded, or of that thread) or
 * their own latest event in the thread. */
#define READ_COL                                                                            \
    "a.stream_ordering <= greatest("                                                        \
    " coalesce((SELECT max(e.stream_ordering) FROM receipts rc"                             \
    "  JOIN events e ON e.event_id = rc.event_id WHERE rc.room_id = a.room_id"              \
    "  AND rc.user_id = $1 AND rc.receipt_type IN ('m.read', 'm.read.private')"             \
    "  AND rc.thread_id IN ('', a.thread_id)), 0),"                                         \
    " coalesce((SELECT s.stream_ordering FROM push_sent_reads s WHERE s.user_id = $1"       \
    "  AND s.room_id = a.room_id AND s.thread_id = a.thread_id), 0))"

static PGresult *query(db_conn *c, const char *user_id, bool only_highlight, long long from,
                       int limit, hs_err *err) {
    /* The applying redaction as events_read.c finds it (sql/008's redactions). */
    static db_stmt q = DB_STMT(
        "SELECT a.room_id, a.event_id, a.stream_ordering, a.actions::text, a.ts, " READ_COL ","
        " convert_from(ev.json, 'UTF8'), rm.room_version, rd.event_id,"
        " convert_from(rd.json, 'UTF8')"
        " FROM event_push_actions a JOIN events ev ON ev.event_id = a.event_id"
        " JOIN rooms rm ON rm.room_id = a.room_id LEFT JOIN LATERAL ("
        "  SELECT x.event_id, xe.json FROM redactions x JOIN events xe ON xe.event_id = x.event_id"
        "  WHERE x.redacts = ev.event_id AND (x.applies OR (x.applies IS NULL AND"
        "   split_part(xe.sender, ':', 2) = split_part(ev.sender, ':', 2)))"
        "  ORDER BY xe.stream_ordering LIMIT 1) rd ON true"
        " WHERE a.user_id = $1 AND (NOT $2::bool OR a.highlight)"
        " AND a.stream_ordering < $3::bigint"
        " ORDER BY a.stream_ordering DESC LIMIT $4::int");
    char sfrom[24], slimit[16];
    snprintf(sfrom, sizeof sfrom, "%lld", from);
    snprintf(slimit, sizeof slimit, "%d", limit + 1);
    const char *p[] = {user_id, only_highlight ? "t" : "f", sfrom, slimit};
    return db_run(c, &q, 4, p, err);
}

/* The notified event in client format, without room_id (the notification has it). */
static json_t *row_event(PGresult *r, int i, long long now) {
    const room_version *v = room_version_get(PQgetvalue(r, i, 7));
    hs_err err = {0};
    json_t *pdu = hs_json_parse(PQgetvalue(r, i, 6), (size_t)PQgetlength(r, i, 6), &err);
    json_t *red = PQgetisnull(r, i, 9)
                      ? NULL
                      : hs_json_parse(PQgetvalue(r, i, 9), (size_t)PQgetlength(r, i, 9), &err);
    json_t *out = pdu && v ? client_event_format(PQgetvalue(r, i, 1), pdu, v, red,
                                                 red ? PQgetvalue(r, i, 8) : NULL, false, now)
                           : json_object();
    json_decref(pdu);
    json_decref(red);
    return out;
}

static int parse_params(hs_req *r, long long *from, int *limit, bool *only_highlight,
                        hs_err *err) {
    const char *f = hs_req_query(r, "from"), *l = hs_req_query(r, "limit");
    const char *only = hs_req_query(r, "only");
    char *end;
    *from = INT64_MAX;
    if (f && *f) {
        *from = strtoll(f, &end, 10);
        if (*end || *from <= 0)
            return hs_err_set(err, 400, "M_INVALID_PARAM", "'from' is not a token from this server");
    }
    *limit = DEFAULT_LIMIT;
    if (l && *l) {
        long v = strtol(l, &end, 10);
        if (*end || v < 0) return hs_err_set(err, 400, "M_INVALID_PARAM", "'limit' must be a number");
        *limit = v > MAX_LIMIT ? MAX_LIMIT : (int)v;
    }
    *only_highlight = only && strstr(only, "highlight") != NULL;
    return 0;
}

static int get_notifications(hs_req *r, json_t **out, hs_err *err) {
    long long from;
    int limit;
    bool only_highlight = false;
    if (parse_params(r, &from, &limit, &only_highlight, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    PGresult *res = query(c, r->user_id, only_highlight, from, limit, err);
    db_release(r->srv->db, c);
    if (!res) return -1;
    json_t *list = json_array();
    int n = PQntuples(res);
    long long now = hs_now_ms();
    for (int i = 0; i < n && i < limit; i++) {
        json_t *actions = json_loads(PQgetvalue(res, i, 3), 0, NULL);
        json_t *ev = row_event(res, i, now);
        /* No rule has a profile tag here; the key is there all the same,
         * null, as Synapse gives it. */
        json_array_append_new(
            list, json_pack("{s:o, s:o, s:b, s:s, s:I, s:n}", "actions",
                            actions ? actions : json_array(), "event", ev, "read",
                            PQgetvalue(res, i, 5)[0] == 't', "room_id", PQgetvalue(res, i, 0), "ts",
                            (json_int_t)atoll(PQgetvalue(res, i, 4)), "profile_tag"));
    }
    *out = json_pack("{s:o}", "notifications", list);
    /* A next page only when there is one (the query asked for one row more). */
    if (n > limit && limit > 0)
        json_object_set_new(*out, "next_token", json_string(PQgetvalue(res, limit - 1, 2)));
    PQclear(res);
    return 200;
}

void client_notifications_routes(hs_router *rt) {
    hs_route(rt, "GET", "/_matrix/client/v3/notifications", get_notifications, HS_AUTH | HS_R0);
}
