/* policy_sign.c — Policy Servers on the federation side: POST
 * /_matrix/policy/v1/sign to the room's Policy Server (the asker rooms/
 * policy_server.h calls, for our own events before they are stored), and
 * the check on a PDU received over federation, whichever way it came.
 *
 * As Synapse: a 30 s budget per request (it found 3 s too short for Policy
 * Servers that scan media); an error the Policy Server sends is kept
 * verbatim (status, errcode, error) because the spec wants the client to see
 * it; no response at all is 502 M_UNKNOWN. A received event without a
 * valid signature gets one more ask (the Policy Server's key may have
 * rotated) and is soft-failed if that fails too. */
#include <stdio.h>
#include <string.h>

#include "homeserver/core/log.h"
#include "rooms/policy_server.h"
#include "rooms_internal.h"

#define FED_POLICY_SIGN_TIMEOUT_MS 30000L

static int ask(void *arg, const char *via, const json_t *pdu, json_t **answer, hs_err *err) {
    hs_server *srv = arg;
    fed_request_opts o = {.timeout_ms = FED_POLICY_SIGN_TIMEOUT_MS};
    long status = 0;
    json_t *resp = NULL;
    *answer = NULL;
    if (fed_request_ex(srv, via, "POST", "/_matrix/policy/v1/sign", pdu, &o, &status, &resp,
                       err) == 0) {
        *answer = resp;
        return 0;
    }
    const char *code = json_string_value(json_object_get(resp, "errcode"));
    const char *msg = json_string_value(json_object_get(resp, "error"));
    if (status >= 400 && status <= 599 && code && strlen(code) < sizeof err->errcode)
        hs_err_set(err, (int)status, code, "%.500s", msg ? msg : "");
    hs_info("policy server %s refused or failed to sign: %d %s %s", via, err->status,
            err->errcode, err->msg);
    json_decref(resp);
    return -1;
}

void fed_policy_server_install(hs_server *srv) { room_policy_set_asker(ask, srv); }

int fed_policy_check_incoming(hs_server *srv, room_event *ev, hs_err *err) {
    if (room_policy_exempt(ev->json)) return 0;
    db_conn *c = db_acquire(srv->db, err);
    if (!c) return -1;
    room_policy_server ps;
    int uses = room_policy_server_of(c, ev->room_id, srv->cfg->server_name, &ps, err);
    db_release(srv->db, c);
    if (uses <= 0 || room_policy_signed(ev->ver, ev->json, &ps)) return uses < 0 ? -1 : 0;
    /* Asking adds the signature to the event when the Policy Server gives a
     * valid one, so it is stored and served with it, as Synapse does. */
    hs_err e = {0};
    if (room_policy_sign(ev->ver, ev->json, &ps, &e) < 0) {
        hs_info("policy server %s: %s not recommended (%s), soft-failing", ps.via, ev->event_id,
                e.msg);
        ev->policy_refused = true;
    }
    return 0;
}
