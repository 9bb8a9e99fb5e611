/* presence_remote.c — presence of other servers' users (m.presence EDUs).
 *
 * Their server decides their state; we store what it says in the same
 * presence table, so /sync serves local and remote users alike. The sweep of
 * presence.c times users out by last_sync_ts: for a remote user that is set
 * so the time-out comes FEDERATION_TIMEOUT_MS after the last news, not after
 * a local client's sync time-out, since remote servers send presence only
 * when it changes (and Synapse re-sends it within that window). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "homeserver/core/clock.h"
#include "homeserver/db/streams.h"
#include "notifier.h"
#include "presence.h"
#include "room_access.h"

#define FEDERATION_TIMEOUT_MS (30LL * 60 * 1000)

static int write_txn(db_conn *c, const char *const *p, hs_err *err) {
    static db_stmt up = DB_STMT(
        "INSERT INTO presence (user_id, state, status_msg, last_active_ts, last_sync_ts,"
        " currently_active, stream_id) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (user_id) DO UPDATE SET state = EXCLUDED.state,"
        " status_msg = EXCLUDED.status_msg, last_active_ts = EXCLUDED.last_active_ts,"
        " last_sync_ts = EXCLUDED.last_sync_ts, currently_active = EXCLUDED.currently_active,"
        " stream_id = EXCLUDED.stream_id");
    if (db_script(c, "BEGIN", err) < 0) return -1;
    if (db_exec(c, &up, 7, p, err) < 0 || db_script(c, "COMMIT", err) < 0) {
        db_script(c, "ROLLBACK", NULL);
        return -1;
    }
    return 0;
}

static void wake(db_conn *c, const char *user_id) {
    hs_notify_users((const char *const[]){user_id}, 1);
    char **rooms;
    size_t n;
    hs_err ignored = {0};
    if (client_joined_rooms(c, user_id, &rooms, &n, &ignored) < 0) return;
    for (size_t i = 0; i < n; i++) hs_notify_room(rooms[i]), free(rooms[i]);
    free(rooms);
}

int client_presence_set_remote(db_conn *c, hs_server *srv, const char *user_id, const char *state,
                               const char *status_msg, long long last_active_ago,
                               bool currently_active, hs_err *err) {
    if (!srv->cfg->presence_enabled) return 0;
    if (strcmp(state, "online") && strcmp(state, "unavailable") && strcmp(state, "offline"))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "Unknown presence state %s", state);
    if (c->in_txn || PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        return hs_err_set(err, 500, "M_UNKNOWN", "presence is written in its own transaction");
    long long now = hs_now_ms();
    long long pos = db_stream_reserve(c, DB_STREAM_PRESENCE, err);
    if (pos < 0) return -1;
    char la[24], ls[24], sid[24];
    snprintf(la, sizeof la, "%lld", now - (last_active_ago > 0 ? last_active_ago : 0));
    snprintf(ls, sizeof ls, "%lld",
             now + FEDERATION_TIMEOUT_MS - srv->cfg->presence_sync_online_timeout -
                 CLIENT_PRESENCE_LONG_POLL_MS);
    snprintf(sid, sizeof sid, "%lld", pos);
    const char *p[] = {user_id, state, status_msg, la, ls, currently_active ? "t" : "f", sid};
    int rc = write_txn(c, p, err);
    db_stream_done(DB_STREAM_PRESENCE, pos);
    if (rc == 0) wake(c, user_id);
    return rc;
}
