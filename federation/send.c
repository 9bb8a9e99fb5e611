/* send.c — PUT /_matrix/federation/v1/send/{txnId}: another server pushes
 * PDUs (new events of rooms we share) and EDUs (typing, receipts, presence,
 * device lists, to-device messages).
 *
 * Each PDU gets its own result ({} or {"error"}), and a PDU that fails never
 * fails the transaction (spec). One whose prev events cannot be had is
 * dropped with {}, the answer Synapse gives (pdu_checks.c). A transaction is idempotent per (origin,
 * txnId): the first answer is kept for a day and given again to a retry,
 * which changes nothing. PDUs are handled before EDUs, so a receipt for an
 * event of the same transaction finds it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/clock.h"
#include "homeserver/core/json.h"
#include "homeserver/core/log.h"
#include "rooms_internal.h"

int fed_txn_parse(const json_t *body, const char *origin, const json_t **pdus, const json_t **edus,
                  hs_err *err) {
    if (!json_is_object(body))
        return hs_err_set(err, 400, "M_BAD_JSON", "A transaction is an object");
    const json_t *o = json_object_get(body, "origin");
    if (o && !json_is_string(o))
        return hs_err_set(err, 400, "M_BAD_JSON", "'origin' must be a string");
    if (o && origin && strcmp(json_string_value(o), origin) != 0)
        return hs_err_set(err, 403, "M_FORBIDDEN",
                          "The transaction's origin is not the server that signed the request");
    *pdus = json_object_get(body, "pdus");
    *edus = json_object_get(body, "edus");
    if (*pdus && !json_is_array(*pdus))
        return hs_err_set(err, 400, "M_BAD_JSON", "'pdus' must be an array");
    if (*edus && !json_is_array(*edus))
        return hs_err_set(err, 400, "M_BAD_JSON", "'edus' must be an array");
    if (json_array_size(*pdus) > FED_TXN_MAX_PDUS || json_array_size(*edus) > FED_TXN_MAX_EDUS)
        return hs_err_set(err, 400, "M_BAD_JSON", "Too many PDUs or EDUs (at most %d and %d)",
                          FED_TXN_MAX_PDUS, FED_TXN_MAX_EDUS);
    return 0;
}

/* The answer already given to (origin, txn_id), or NULL. */
static json_t *earlier_answer(hs_server *srv, const char *origin, const char *txn_id, hs_err *err,
                              bool *failed) {
    static db_stmt q =
        DB_STMT("SELECT response FROM fed_received_txns WHERE origin = $1 AND txn_id = $2");
    *failed = true;
    db_conn *c = db_acquire(srv->db, err);
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){origin, txn_id}, err) : NULL;
    db_release(srv->db, c);
    if (!r) return NULL;
    *failed = false;
    json_t *j = NULL;
    if (PQntuples(r)) j = hs_json_parse(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), err);
    PQclear(r);
    return j;
}

static void remember_answer(hs_server *srv, const char *origin, const char *txn_id,
                            const json_t *resp) {
    static db_stmt ins = DB_STMT(
        "INSERT INTO fed_received_txns (origin, txn_id, response, received_ts) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT DO NOTHING");
    static db_stmt old = DB_STMT("DELETE FROM fed_received_txns WHERE received_ts < $1");
    hs_err err = {0};
    char now[24], day_ago[24];
    snprintf(now, sizeof now, "%lld", hs_now_ms());
    snprintf(day_ago, sizeof day_ago, "%lld", hs_now_ms() - 24LL * 3600 * 1000);
    char *text = hs_json_canonical(resp, NULL, &err);
    db_conn *c = text ? db_acquire(srv->db, &err) : NULL;
    if (!c || db_exec(c, &ins, 4, (const char *[]){origin, txn_id, text, now}, &err) < 0 ||
        db_exec(c, &old, 1, (const char *[]){day_ago}, &err) < 0)
        hs_warn("federation: cannot remember transaction %s of %s: %s", txn_id, origin, err.msg);
    db_release(srv->db, c);
    free(text);
}

static json_t *handle_pdus(hs_server *srv, const char *origin, const json_t *pdus) {
    json_t *results = json_object();
    size_t i;
    json_t *pdu;
    json_array_foreach(pdus, i, pdu) {
        char *event_id = NULL;
        hs_err e = {0};
        int rc = fed_receive_pdu(srv, origin, pdu, &event_id, &e);
        if (rc < 0)
            hs_info("federation: PDU %s from %s: %s", event_id ? event_id : "?", origin, e.msg);
        if (event_id)
            json_object_set_new(results, event_id,
                                rc == 0 ? json_object() : json_pack("{s:s}", "error", e.msg));
        free(event_id);
    }
    return results;
}

static void handle_edus(hs_server *srv, const char *origin, const json_t *edus) {
    size_t i;
    json_t *edu;
    json_array_foreach(edus, i, edu) {
        const char *type = json_string_value(json_object_get(edu, "edu_type"));
        const json_t *content = json_object_get(edu, "content");
        if (type && json_is_object(content)) fed_handle_edu(srv, origin, type, content);
        else hs_debug("federation: ignoring a malformed EDU from %s", origin);
    }
}

static int put_send(hs_req *r, json_t **out, hs_err *err) {
    const json_t *pdus, *edus;
    bool failed;
    json_t *earlier = earlier_answer(r->srv, r->origin, r->params[0], err, &failed);
    if (earlier) return *out = earlier, 200;
    if (failed) return -1;
    if (fed_txn_parse(r->json, r->origin, &pdus, &edus, err) < 0) return -1;
    json_t *resp = json_pack("{s:o}", "pdus", handle_pdus(r->srv, r->origin, pdus));
    handle_edus(r->srv, r->origin, edus);
    remember_answer(r->srv, r->origin, r->params[0], resp);
    *out = resp;
    return 200;
}

void fed_send_routes(hs_router *rt) {
    hs_route(rt, "PUT", "/_matrix/federation/v1/send/{txnId}", put_send, HS_FEDERATION);
}
