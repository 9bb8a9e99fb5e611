/* reports.c — POST /rooms/{roomId}/report/{eventId} (r0),
 * POST /rooms/{roomId}/report (v1.13) and POST /users/{userId}/report (v1.14).
 *
 * Reports are stored for the admin (`pvyhs report list`); nothing is sent
 * anywhere. What an answer reveals follows the spec: an event report needs
 * an event the reporter can see in a room they are joined to (404
 * otherwise, which is also the answer for a room they are not in, so it
 * tells outsiders nothing); a room report needs a room this server knows
 * (404); a user report always answers 200, and one about a local user who
 * does not exist is dropped (the spec lets servers hide who exists, and
 * Synapse does). Reports about remote users are kept: the admin may still
 * act on them in local rooms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "events_read.h"
#include "homeserver/core/clock.h"
#include "reports.h"
#include "room_access.h"

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* The body's reason: a string when given (required: 400 when missing),
 * at most CLIENT_REPORT_REASON_MAX characters. */
static int get_reason(const json_t *body, bool required, const char **reason, hs_err *err) {
    const json_t *v = json_object_get(body, "reason");
    *reason = json_string_value(v);
    if (!v && required) return hs_err_set(err, 400, "M_MISSING_PARAM", "'reason' is required");
    if (v && !*reason) return hs_err_set(err, 400, "M_BAD_JSON", "Param 'reason' must be a string");
    if (*reason && utf8_chars(*reason) > CLIENT_REPORT_REASON_MAX)
        return hs_err_set(err, 400, "M_BAD_JSON", "Reason must be at most %d characters",
                          CLIENT_REPORT_REASON_MAX);
    return 0;
}

static int store(hs_req *r, const char *kind, const char *room_id, const char *event_id,
                 const char *user_id, const char *reason, const char *score, hs_err *err) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO reports (kind, reporter, room_id, event_id, target_user_id, reason, score,"
        " received_ts) VALUES ($1, $2, $3, $4, $5, $6, $7::integer, $8)");
    char now[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const char *p[] = {kind, r->user_id, room_id, event_id, user_id, reason, score, now};
    long n = db_exec(c, &ins, 8, p, err);
    db_release(r->srv->db, c);
    return n < 0 ? -1 : 0;
}

/* 0 when the reporter is joined to the room and sees the event there,
 * unredacted; 404 otherwise (the spec's single answer for all of it). */
static int reportable_event(db_conn *c, hs_req *r, hs_err *err) {
    static const char not_found[] = "The event was not found or you are not joined to the room.";
    hs_err refused = {0};
    if (client_require_joined(c, r->params[0], r->user_id, &refused) < 0) {
        if (refused.status != 403) return *err = refused, -1;
        return hs_err_set(err, 404, "M_NOT_FOUND", "%s", not_found);
    }
    json_t *arr = json_array();
    const char *id = r->params[1];
    int rc = client_events_by_ids_for(c, r->user_id, NULL, &id, 1, true, arr, err);
    json_t *ev = json_array_get(arr, 0);
    const char *room = json_string_value(json_object_get(ev, "room_id"));
    if (rc == 0 && (!room || strcmp(room, r->params[0]) != 0 ||
                    json_object_get(json_object_get(ev, "unsigned"), "redacted_because")))
        rc = hs_err_set(err, 404, "M_NOT_FOUND", "%s", not_found);
    json_decref(arr);
    return rc;
}

static int post_report_event(hs_req *r, json_t **out, hs_err *err) {
    const char *reason;
    const json_t *score = json_object_get(r->json, "score");
    if (get_reason(r->json, false, &reason, err) < 0) return -1;
    /* score left the spec in v1.18; older clients still send it. */
    if (score && (!json_is_integer(score) || json_integer_value(score) < -2147483647 ||
                  json_integer_value(score) > 2147483647))
        return hs_err_set(err, 400, "M_BAD_JSON", "Param 'score' must be an integer");
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    int rc = reportable_event(c, r, err);
    db_release(r->srv->db, c);
    char sc[24];
    if (score) snprintf(sc, sizeof sc, "%lld", (long long)json_integer_value(score));
    if (rc < 0 || store(r, "event", r->params[0], r->params[1], NULL, reason, score ? sc : NULL,
                        err) < 0)
        return -1;
    *out = json_object();
    return 200;
}

static int post_report_room(hs_req *r, json_t **out, hs_err *err) {
    const char *reason;
    if (get_reason(r->json, true, &reason, err) < 0) return -1;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    const room_version *v = room_store_room_version(c, r->params[0], err);
    db_release(r->srv->db, c);
    if (!v) {
        if (err->status == 404) hs_err_set(err, 404, "M_NOT_FOUND", "The room was not found.");
        return -1;
    }
    if (store(r, "room", r->params[0], NULL, NULL, reason, NULL, err) < 0) return -1;
    *out = json_object();
    return 200;
}

static bool user_id_syntax(const char *u) {
    const char *colon = strchr(u, ':');
    return u[0] == '@' && colon && colon > u + 1 && colon[1] && strlen(u) <= 255;
}

static int post_report_user(hs_req *r, json_t **out, hs_err *err) {
    static db_stmt known = DB_STMT("SELECT 1 FROM users WHERE user_id = $1");
    const char *reason, *target = r->params[0];
    if (get_reason(r->json, true, &reason, err) < 0) return -1;
    if (!user_id_syntax(target)) return hs_err_set(err, 400, "M_INVALID_PARAM", "Invalid user ID");
    const char *server = strchr(target, ':') + 1;
    bool keep = strcmp(server, r->srv->cfg->server_name) != 0;
    if (!keep) {
        db_conn *c = db_acquire(r->srv->db, err);
        PGresult *res = c ? db_run(c, &known, 1, (const char *[]){target}, err) : NULL;
        db_release(r->srv->db, c);
        if (!res) return -1;
        keep = PQntuples(res) > 0;
        PQclear(res);
    }
    if (keep && store(r, "user", NULL, NULL, target, reason, NULL, err) < 0) return -1;
    *out = json_object();
    return 200;
}

int client_reports_list(db_conn *c, json_t **out, hs_err *err) {
    static db_stmt q = DB_STMT(
        "SELECT id, kind, reporter, room_id, event_id, target_user_id, reason, score, received_ts"
        " FROM reports ORDER BY id");
    static const char *const names[] = {"id", "kind", "reporter", "room_id", "event_id",
                                        "user_id", "reason", "score", "received_ts"};
    PGresult *r = db_run(c, &q, 0, NULL, err);
    if (!r) return -1;
    *out = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();
        for (int k = 0; k < 9; k++) {
            if (PQgetisnull(r, i, k)) continue;
            const char *v = PQgetvalue(r, i, k);
            bool number = k == 0 || k == 7 || k == 8;
            json_object_set_new(o, names[k], number ? json_integer(atoll(v)) : json_string(v));
        }
        json_array_append_new(*out, o);
    }
    PQclear(r);
    return 0;
}

void client_reports_routes(hs_router *rt) {
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/report/{eventId}", post_report_event, HS_AUTH | HS_R0);
    hs_route(rt, "POST", "/_matrix/client/v3/rooms/{roomId}/report", post_report_room, HS_AUTH);
    hs_route(rt, "POST", "/_matrix/client/v3/users/{userId}/report", post_report_user, HS_AUTH);
}
