/* room_send.c — sending a local event, committing it, waking its readers. */
#include "room_send.h"

#include <stdlib.h>
#include <string.h>

#include "homeserver/db/streams.h"
#include "notifier.h"

typedef struct send_job {
    hs_server *srv;
    const room_version *v;
    const char *room_id;
    const json_t *proto;
    long long pos;
    room_event *out;
} send_job;

static int send_txn(db_conn *c, void *arg, hs_err *err) {
    send_job *j = arg;
    room_event_free(j->out);
    j->out = NULL;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_EVENTS, err)) < 0) return -1;
    j->out = room_send_local(c, j->v, j->room_id, j->proto, j->srv->cfg->server_name,
                             &j->srv->key, j->pos, err);
    return j->out ? 0 : -1;
}

room_event *client_room_send(hs_server *srv, const room_version *v, const char *room_id,
                             const json_t *proto, hs_err *err) {
    send_job j = {.srv = srv, .v = v, .room_id = room_id, .proto = proto};
    int rc = db_txn(srv->db, send_txn, &j, err);
    if (j.pos > 0) db_stream_done(DB_STREAM_EVENTS, j.pos);
    if (rc < 0) {
        room_event_free(j.out);
        return NULL;
    }
    hs_notify_room(j.out->room_id);
    /* An invite (or kick, ban) reaches a user who is not waiting on the room. */
    if (j.out->membership && j.out->state_key && strcmp(j.out->state_key, j.out->sender) != 0)
        hs_notify_users((const char *const[]){j.out->state_key}, 1);
    return j.out;
}

room_event *client_room_send_state(hs_server *srv, const char *room_id, const char *sender,
                                   const char *type, const char *state_key, json_t *content,
                                   hs_err *err) {
    json_t *p = json_pack("{s:s, s:s, s:s, s:O}", "type", type, "sender", sender, "state_key",
                          state_key, "content", content);
    room_event *ev = client_room_send(srv, NULL, room_id, p, err);
    json_decref(p);
    return ev;
}
