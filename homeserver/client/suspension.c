/* suspension.c — the events a suspended account may still send. */
#include <string.h>

#include "rooms/rooms.h"
#include "suspension.h"

static int refuse(hs_err *err, const char *what) {
    return hs_err_set(err, 403, "M_USER_SUSPENDED", "%s while account is suspended is not allowed.",
                      what);
}

int client_suspended_may_redact(hs_req *r, const char *target_sender, hs_err *err) {
    if (!r->is_suspended || !strcmp(target_sender, r->user_id)) return 0;
    return hs_err_set(err, 403, "M_USER_SUSPENDED",
                      "You can only redact your own events while account is suspended.");
}

/* An m.room.redaction sent through /send: its target's sender decides. An
 * unknown target is left to the send itself (which refuses it or not, as
 * for anyone). */
static int redaction(hs_req *r, const json_t *content, hs_err *err) {
    const char *target = json_string_value(json_object_get(content, "redacts"));
    if (!target) return 0;
    db_conn *c = db_acquire(r->srv->db, err);
    if (!c) return -1;
    hs_err e = {0};
    room_event *ev = room_store_get_event(c, target, &e);
    db_release(r->srv->db, c);
    int rc = ev ? client_suspended_may_redact(r, ev->sender, err) : 0;
    room_event_free(ev);
    return rc;
}

int client_suspended_may_send(hs_req *r, const char *type, const char *state_key,
                              const json_t *content, hs_err *err) {
    if (!r->is_suspended) return 0;
    if (!strcmp(type, "m.room.member")) {
        /* Leaving, or rejecting an invite; not kicking others. */
        const char *m = json_string_value(json_object_get(content, "membership"));
        if (state_key && !strcmp(state_key, r->user_id) && m && !strcmp(m, "leave")) return 0;
        return refuse(err, "Changing membership");
    }
    if (!strcmp(type, "m.room.redaction") && !state_key) return redaction(r, content, err);
    return refuse(err, "Sending messages");
}
