/* policy_server.c — Policy Servers: the "room uses one" rule, the signature
 * check, and asking for a signature through the asker federation installs. */
#include <stdio.h>
#include <string.h>

#include "homeserver/core/base64.h"
#include "homeserver/core/log.h"
#include "homeserver/core/server_name.h"
#include "homeserver/core/signing.h"
#include "policy_server.h"
#include "rooms.h"

static room_policy_asker asker;
static void *asker_arg;

void room_policy_set_asker(room_policy_asker fn, void *arg) {
    asker = fn;
    asker_arg = arg;
}

bool room_policy_exempt(const json_t *event) {
    const char *type = json_string_value(json_object_get(event, "type"));
    const char *sk = json_string_value(json_object_get(event, "state_key"));
    return type && sk && !strcmp(type, "m.room.policy") && !*sk;
}

bool room_policy_parse(const json_t *content, room_policy_server *ps) {
    const char *via = json_string_value(json_object_get(content, "via"));
    const json_t *keys = json_object_get(content, "public_keys");
    const char *k = json_string_value(json_object_get(keys, "ed25519"));
    size_t n = 0;
    if (!via || !json_is_object(keys) || !k || !hs_server_name_valid(via) ||
        strlen(via) >= sizeof ps->via)
        return false;
    /* Unpadded standard base64 per the spec; Synapse's decoder also takes the
     * URL-safe alphabet (the spec's own well-known example uses it). */
    if ((hs_b64_decode(k, strlen(k), ps->key, sizeof ps->key, &n, false) < 0 &&
         hs_b64_decode(k, strlen(k), ps->key, sizeof ps->key, &n, true) < 0) ||
        n != sizeof ps->key)
        return false;
    snprintf(ps->via, sizeof ps->via, "%s", via);
    return true;
}

int room_policy_server_of(db_conn *c, const char *room_id, const char *own_server_name,
                          room_policy_server *ps, hs_err *err) {
    static db_stmt policy_q = DB_STMT(
        "SELECT event_id FROM current_state WHERE room_id = $1 AND type = 'm.room.policy'"
        " AND state_key = ''");
    static db_stmt joined = DB_STMT(
        "SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
        " AND membership = 'join' AND substr(state_key, strpos(state_key, ':') + 1) = $2 LIMIT 1");
    PGresult *r = db_run(c, &policy_q, 1, (const char *[]){room_id}, err);
    if (!r) return -1;
    if (PQntuples(r) == 0) return PQclear(r), 0;
    room_event *ev = room_store_get_event(c, PQgetvalue(r, 0, 0), err);
    PQclear(r);
    if (!ev) return -1;
    bool valid = room_policy_parse(ev->content, ps);
    room_event_free(ev);
    if (!valid || !strcmp(ps->via, own_server_name)) return 0;
    if (!(r = db_run(c, &joined, 2, (const char *[]){room_id, ps->via}, err))) return -1;
    int in = PQntuples(r) > 0;
    PQclear(r);
    return in;
}

bool room_policy_signed(const room_version *v, const json_t *event, const room_policy_server *ps) {
    json_t *red = room_event_redact(v, event);
    hs_err e = {0};
    bool ok = red && hs_json_verify(red, ps->via, ROOM_POLICY_KEY_ID, ps->key, &e) == 0;
    json_decref(red);
    return ok;
}

int room_policy_sign(const room_version *v, json_t *event, const room_policy_server *ps,
                     hs_err *err) {
    if (!asker)
        return hs_err_set(err, 502, "M_UNKNOWN", "cannot reach the room's policy server %s",
                          ps->via);
    json_t *pdu = json_deep_copy(event), *answer = NULL;
    json_object_del(pdu, "unsigned");
    int rc = asker(asker_arg, ps->via, pdu, &answer, err);
    json_decref(pdu);
    if (rc < 0) return -1;
    /* Only the Policy Server's own signatures are taken from the answer. */
    const char *sig = json_string_value(
        json_object_get(json_object_get(answer, ps->via), ROOM_POLICY_KEY_ID));
    if (sig) {
        json_t *sigs = json_object_get(event, "signatures");
        if (!json_is_object(sigs)) json_object_set_new(event, "signatures", sigs = json_object());
        json_t *mine = json_object_get(sigs, ps->via);
        if (!json_is_object(mine)) json_object_set_new(sigs, ps->via, mine = json_object());
        json_object_set_new(mine, ROOM_POLICY_KEY_ID, json_string(sig));
    }
    json_decref(answer);
    if (sig && room_policy_signed(v, event, ps)) return 0;
    /* Synapse's words for an event its Policy Server would not vouch for. */
    hs_warn("policy server %s answered without a valid signature", ps->via);
    return hs_err_set(err, 403, "M_FORBIDDEN", "This message has been rejected as probable spam");
}

int room_policy_sign_local(db_conn *c, const room_version *v, json_t *event,
                           const char *own_server_name, hs_err *err) {
    if (room_policy_exempt(event)) return 0;
    room_policy_server ps;
    const char *room_id = json_string_value(json_object_get(event, "room_id"));
    int uses = room_id ? room_policy_server_of(c, room_id, own_server_name, &ps, err) : 0;
    if (uses <= 0) return uses;
    if (!asker) {
        /* No federation here (the command line): sent unsigned, which the
         * spec allows; other servers ask the Policy Server themselves. */
        hs_warn("%s uses policy server %s, which this process cannot reach: sent unsigned",
                room_id, ps.via);
        return 0;
    }
    return room_policy_sign(v, event, &ps, err) < 0 ? -1 : 1;
}
