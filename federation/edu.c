/* edu.c — the EDUs of a /send transaction, each handed to the client area
 * that owns what it changes: m.typing (typing.h), m.receipt (receipts.h),
 * m.presence (presence.h), m.device_list_update (in order:
 * device_list_resync.c), m.signing_key_update and m.direct_to_device
 * (e2ee_remote.h).
 *
 * A server speaks only for its own users: an EDU about a user of another
 * server is ignored, as are typing and receipts in rooms the user is not
 * joined to or whose server ACL bans the sender (spec "Server ACLs"). EDUs
 * carry no answer, so what is wrong with one is only logged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/e2ee_remote.h"
#include "homeserver/client/presence.h"
#include "homeserver/client/receipts.h"
#include "homeserver/client/typing.h"
#include "homeserver/core/log.h"
#include "rooms_internal.h"

/* Synapse's default when a typing EDU gives no timeout. */
#define TYPING_DEFAULT_MS 30000

/* Is user_id (of origin) joined to room_id, and does its ACL let origin in?
 * While our state of the room is partial, a user whose membership we do not
 * know yet counts if its server is one the join answer listed (Synapse takes
 * the same approximation of the room's servers). */
static bool may_act_in_room(hs_server *srv, const char *origin, const char *room_id,
                            const char *user_id) {
    static db_stmt q =
        DB_STMT("SELECT 1 FROM current_state WHERE room_id = $1 AND type = 'm.room.member'"
                " AND state_key = $2 AND membership = 'join'"
                " UNION ALL SELECT 1 FROM fed_partial_state_rooms p WHERE p.room_id = $1"
                "  AND $3 = ANY(p.servers) AND NOT EXISTS (SELECT 1 FROM current_state cs"
                "   WHERE cs.room_id = $1 AND cs.type = 'm.room.member' AND cs.state_key = $2)"
                " LIMIT 1");
    if (!room_id || !fed_user_of(user_id, origin)) return false;
    hs_err err = {0};
    db_conn *c = db_acquire(srv->db, &err);
    PGresult *r = c ? db_run(c, &q, 3, (const char *[]){room_id, user_id, origin}, &err) : NULL;
    bool ok = r && PQntuples(r) > 0 && room_acl_allows(c, room_id, origin, &err) == 1;
    PQclear(r);
    db_release(srv->db, c);
    return ok;
}

static void typing(hs_server *srv, const char *origin, const json_t *content) {
    const char *room_id = json_string_value(json_object_get(content, "room_id"));
    const char *user_id = json_string_value(json_object_get(content, "user_id"));
    const json_t *on = json_object_get(content, "typing");
    const json_t *t = json_object_get(content, "timeout");
    if (!json_is_boolean(on) || !may_act_in_room(srv, origin, room_id, user_id)) {
        hs_debug("federation: ignoring m.typing from %s", origin);
        return;
    }
    long long timeout =
        json_is_integer(t) && json_integer_value(t) > 0 ? json_integer_value(t) : TYPING_DEFAULT_MS;
    client_typing_set(room_id, user_id, json_is_true(on), timeout);
}

/* The receipt's event: of the event IDs given, the latest we have in the
 * room, else the first (a receipt may come before its event, or during a
 * partial-state join for an event we will not get: Synapse keeps it too,
 * and clients show it once they have the event). */
static const char *latest_event(hs_server *srv, const char *room_id, const json_t *ids, char *buf,
                                size_t n) {
    static db_stmt q =
        DB_STMT("SELECT event_id FROM events WHERE room_id = $1 AND event_id = ANY($2::text[])"
                " AND stream_ordering IS NOT NULL ORDER BY stream_ordering DESC LIMIT 1");
    size_t cnt = json_array_size(ids), k = 0;
    const char **v = calloc(cnt + 1, sizeof *v);
    for (size_t i = 0; v && i < cnt; i++)
        if (json_is_string(json_array_get(ids, i)))
            v[k++] = json_string_value(json_array_get(ids, i));
    const char *first = v && k ? v[0] : "";
    char *arr = v && k ? db_text_array(v, k) : NULL;
    free(v);
    hs_err err = {0};
    db_conn *c = arr ? db_acquire(srv->db, &err) : NULL;
    PGresult *r = c ? db_run(c, &q, 2, (const char *[]){room_id, arr}, &err) : NULL;
    db_release(srv->db, c);
    free(arr);
    const char *out = NULL;
    if (r && PQntuples(r)) snprintf(buf, n, "%s", PQgetvalue(r, 0, 0)), out = buf;
    else if (r && k && strlen(first) < n) snprintf(buf, n, "%s", first), out = buf;
    PQclear(r);
    return out;
}

static void receipt_users(hs_server *srv, const char *origin, const char *room_id, const char *type,
                          const json_t *users) {
    const char *user_id;
    json_t *rec;
    json_object_foreach((json_t *)users, user_id, rec) {
        char ev[300];
        const json_t *data = json_object_get(rec, "data");
        if (!may_act_in_room(srv, origin, room_id, user_id) ||
            !latest_event(srv, room_id, json_object_get(rec, "event_ids"), ev, sizeof ev))
            continue;
        hs_err err = {0};
        if (client_receipt_store_remote(srv, room_id, type, user_id, ev,
                                        json_is_object(data) ? data : NULL, &err) < 0)
            hs_info("federation: receipt of %s in %s: %s", user_id, room_id, err.msg);
    }
}

static void receipts(hs_server *srv, const char *origin, const json_t *content) {
    const char *room_id;
    json_t *by_type;
    json_object_foreach((json_t *)content, room_id, by_type) {
        const char *type;
        json_t *users;
        /* Private receipts never leave their server; anything else unknown is skipped. */
        json_object_foreach(by_type, type,
                            users) if (!strcmp(type, "m.read") && json_is_object(users))
            receipt_users(srv, origin, room_id, type, users);
    }
}

static void presence(hs_server *srv, const char *origin, const json_t *content) {
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(content, "push"), i, p) {
        const char *user_id = json_string_value(json_object_get(p, "user_id"));
        const char *state = json_string_value(json_object_get(p, "presence"));
        const json_t *ago = json_object_get(p, "last_active_ago");
        if (!fed_user_of(user_id, origin) || !state) continue;
        hs_err err = {0};
        db_conn *c = db_acquire(srv->db, &err);
        int rc =
            c ? client_presence_set_remote(
                    c, srv, user_id, state, json_string_value(json_object_get(p, "status_msg")),
                    json_is_integer(ago) ? json_integer_value(ago) : 0,
                    json_is_true(json_object_get(p, "currently_active")), &err)
              : -1;
        db_release(srv->db, c);
        if (rc < 0) hs_debug("federation: presence of %s: %s", user_id, err.msg);
    }
}

void fed_handle_edu(hs_server *srv, const char *origin, const char *type, const json_t *content) {
    hs_err err = {0};
    int rc = 0;
    if (!strcmp(type, "m.typing")) typing(srv, origin, content);
    else if (!strcmp(type, "m.receipt")) receipts(srv, origin, content);
    else if (!strcmp(type, "m.presence")) presence(srv, origin, content);
    else if (!strcmp(type, "m.device_list_update"))
        rc = fed_device_list_update(srv, origin, content, &err);
    else if (!strcmp(type, "m.signing_key_update"))
        rc = client_e2ee_remote_signing_key_update(srv, origin, content, &err);
    else if (!strcmp(type, "m.direct_to_device"))
        rc = client_e2ee_remote_to_device(srv, origin, content, &err);
    else hs_debug("federation: ignoring EDU %s from %s", type, origin);
    if (rc < 0) hs_info("federation: EDU %s from %s: %s", type, origin, err.msg);
}
