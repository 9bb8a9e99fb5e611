/* remote_memberships.c — a local user's invite to, knock on, or rejection
 * of a room this server is not in (sql/013: fed_remote_memberships). We
 * hold no state of such a room, so the membership event and the stripped
 * state its server gave are kept aside, at a position of the room events
 * stream, for /sync's invite, knock and leave sections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "homeserver/client/notifier.h"
#include "homeserver/core/json.h"
#include "homeserver/db/streams.h"
#include "rooms_internal.h"

typedef struct rm_job {
    const char *const
        *p; /* room, user, membership, event_id, json, version, sender, stripped, via */
    long long pos;
} rm_job;

static int store_txn(db_conn *c, void *arg, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO fed_remote_memberships (room_id, user_id, membership, event_id, event_json,"
        " room_version, sender, stripped_state, via, stream_ordering)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (room_id, user_id) DO UPDATE"
        " SET membership = EXCLUDED.membership, event_id = EXCLUDED.event_id,"
        " event_json = EXCLUDED.event_json, room_version = EXCLUDED.room_version,"
        " sender = EXCLUDED.sender, stripped_state = EXCLUDED.stripped_state,"
        " via = EXCLUDED.via, stream_ordering = EXCLUDED.stream_ordering");
    rm_job *j = arg;
    if (j->pos <= 0 && (j->pos = db_stream_reserve(c, DB_STREAM_EVENTS, err)) < 0) return -1;
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", j->pos);
    const char *p[10];
    memcpy(p, j->p, 9 * sizeof *p);
    p[9] = pos;
    return db_exec(c, &up, 10, p, err) < 0 ? -1 : 0;
}

int fed_remote_membership_store(hs_server *srv, const room_event *ev, const char *user_id,
                                const char *membership, const json_t *stripped_pdus,
                                const char *via, hs_err *err) {
    json_t *stripped = fed_strip_for_clients(stripped_pdus);
    json_t *self = json_pack("[O]", ev->json), *mine = fed_strip_for_clients(self);
    json_array_extend(stripped, mine);
    json_decref(self), json_decref(mine);
    char *text = hs_json_canonical(stripped, NULL, err);
    char *evj = text ? hs_json_canonical_ex(ev->json, (const char *const[]){"unsigned", NULL},
                                            HS_JSON_CANON_ANY_INT, NULL, err)
                     : NULL;
    json_decref(stripped);
    int rc = -1;
    if (evj) {
        const char *p[9] = {ev->room_id, user_id,    membership, ev->event_id, evj,
                            ev->ver->id, ev->sender, text,       via};
        rm_job j = {.p = p};
        rc = db_txn(srv->db, store_txn, &j, err);
        if (j.pos > 0) db_stream_done(DB_STREAM_EVENTS, j.pos);
    }
    free(text);
    free(evj);
    if (rc == 0) hs_notify_users((const char *const[]){user_id}, 1);
    return rc;
}
