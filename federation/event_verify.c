/* event_verify.c — checks on receipt of a PDU, the first three: a valid
 * event of its room version, signed by the servers that must sign it, with
 * a content hash that matches (else we keep only its redacted copy, as the
 * spec says: the hash failing means we were given a redacted event, or a
 * tampered one, and either way only the signed parts can be trusted).
 *
 * Which servers must sign (spec "Validating hashes and signatures on
 * received events", and Synapse's _check_sigs_on_pdu): the sender's, except
 * for an invite made from a third-party invite (any server may send that);
 * in room versions 1 and 2 also the server named in the event ID; and for a
 * join to a restricted room through an authorising user, that user's
 * server. */
#include <stdlib.h>
#include <string.h>

#include "homeserver/core/log.h"
#include "rooms_internal.h"

static bool is_3pid_invite(const room_event *ev) {
    return ev->membership && !strcmp(ev->membership, "invite") &&
           json_object_get(ev->content, "third_party_invite");
}

static int verify_by(hs_server *srv, const room_version *v, const room_event *ev,
                     const json_t *redacted, const char *server, hs_err *err) {
    if (!server[0])
        return hs_err_set(err, 401, "M_UNAUTHORIZED", "%s: no server to check a signature of",
                          ev->event_id);
    if (!strcmp(server, srv->cfg->server_name)) /* ours: no need to look our key up */
        return hs_json_verify(redacted, server, srv->key.key_id, srv->key.pk, err);
    /* Room versions 5 and later require keys valid when the event was sent. */
    long long min_valid = atoi(v->id) >= 5 ? ev->origin_server_ts : 0;
    hs_err e = {0};
    if (fed_verify_json_signed_by(srv, redacted, server, min_valid, &e) == 0) return 0;
    return hs_err_set(err, 401, "M_UNAUTHORIZED", "%s: no valid signature of %s: %s", ev->event_id,
                      server, e.msg);
}

static int check_signatures(hs_server *srv, const room_version *v, const room_event *ev,
                            hs_err *err) {
    json_t *redacted = room_event_redact(v, ev->json);
    if (!redacted) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    const char *sender_server = fed_id_domain(ev->sender);
    int rc = 0;
    if (!is_3pid_invite(ev)) rc = verify_by(srv, v, ev, redacted, sender_server, err);
    if (rc == 0 && v->event_format == ROOM_EVFMT_V1) {
        const char *id_server = fed_id_domain(ev->event_id);
        if (strcmp(id_server, sender_server) != 0)
            rc = verify_by(srv, v, ev, redacted, id_server, err);
    }
    const char *via =
        json_string_value(json_object_get(ev->content, "join_authorised_via_users_server"));
    if (rc == 0 && v->restricted_join && ev->membership && !strcmp(ev->membership, "join") && via) {
        const char *auth_server = fed_id_domain(via);
        if (strcmp(auth_server, sender_server) != 0)
            rc = verify_by(srv, v, ev, redacted, auth_server, err);
    }
    json_decref(redacted);
    return rc;
}

room_event *fed_event_verify(hs_server *srv, const room_version *v, const json_t *pdu,
                             hs_err *err) {
    if (!json_is_object(pdu))
        return hs_err_set(err, 400, "M_BAD_JSON", "A PDU must be an object"), NULL;
    json_t *copy = json_copy((json_t *)pdu); /* shallow: only "unsigned" goes */
    json_object_del(copy, "unsigned");
    room_event *ev = room_event_parse(v, copy, err);
    json_decref(copy);
    if (!ev) return NULL;
    if (check_signatures(srv, v, ev, err) < 0) {
        room_event_free(ev);
        return NULL;
    }
    hs_err hash = {0};
    if (room_event_check_content_hash(ev->json, &hash) == 0) return ev;
    hs_warn("federation: %s fails its content hash (%s): using its redacted form", ev->event_id,
            hash.msg);
    json_t *redacted = room_event_redact(v, ev->json);
    room_event *red = redacted ? room_event_parse(v, redacted, err) : NULL;
    json_decref(redacted);
    room_event_free(ev);
    return red;
}

int fed_event_sign(const hs_server *srv, const room_version *v, json_t *json, hs_err *err) {
    json_t *redacted = room_event_redact(v, json);
    if (!redacted) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory");
    int rc = hs_json_sign(redacted, srv->cfg->server_name, &srv->key, err);
    if (rc == 0) {
        /* Only our entry changes: the others' signatures are kept as they were. */
        json_t *sigs = json_object_get(json, "signatures");
        if (!json_is_object(sigs)) json_object_set_new(json, "signatures", sigs = json_object());
        json_object_set(
            sigs, srv->cfg->server_name,
            json_object_get(json_object_get(redacted, "signatures"), srv->cfg->server_name));
    }
    json_decref(redacted);
    return rc;
}
